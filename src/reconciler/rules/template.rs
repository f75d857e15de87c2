//! A structural check of the Go templates in alert labels and annotations (`{{ $labels.job }}`),
//! which Prometheus parses when it loads a rule file: every action is closed, and every
//! `if`, `range`, `with`, `define` and `block` has its `end`. It does not type-check: a
//! template that passes here can still fail in Prometheus (an unknown function, say), which
//! then refuses the reload and keeps running on its last good rules.

/// Checks the template `text`, naming the first problem.
pub fn check(text: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let body_start = start + 2;
        let end = action_end(&rest[body_start..])
            .ok_or_else(|| format!("unclosed action (a {{{{ without }}}}) in {text:?}"))?;
        let body = rest[body_start..body_start + end].trim_start_matches('-');
        let body = body.strip_suffix('-').unwrap_or(body).trim();
        let word = body.split(|c: char| c.is_whitespace() || c == '(').next();
        match word.unwrap_or_default() {
            w @ ("if" | "range" | "with" | "define" | "block") => open.push(w),
            "end" => {
                open.pop()
                    .ok_or_else(|| format!("unexpected {{{{end}}}} in {text:?}"))?;
            }
            "else" if !matches!(open.last(), Some(&("if" | "range" | "with"))) => {
                return Err(format!("unexpected {{{{else}}}} in {text:?}"));
            }
            _ => {}
        }
        rest = &rest[body_start + end + 2..];
    }
    match open.last() {
        Some(w) => Err(format!("{{{{{w}}}}} without {{{{end}}}} in {text:?}")),
        None => Ok(()),
    }
}

/// Where `}}` closes the action starting at `body`, skipping quoted strings and comments.
fn action_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1 + body[i + 1..].find('`')?;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2 + body[i + 2..].find("*/")? + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn well_formed_templates_pass() {
        for ok in [
            "plain text",
            "{{ $labels.job }} is down ({{ $value | humanize }})",
            "{{ if gt $value 1.0 }}many{{ else }}one{{ end }}",
            "{{- range $i, $x := query \"up\" }}{{ $x.Labels.job }} {{ end -}}",
            "{{ \"}}\" }} and {{ `}}` }}",
            "{{/* a comment with }} inside */}}",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn broken_templates_are_named() {
        for (bad, says) in [
            ("{{ $labels.job ", "unclosed action"),
            ("{{ if $value }}x", "without {{end}}"),
            ("x{{ end }}", "unexpected {{end}}"),
            ("{{ else }}", "unexpected {{else}}"),
            ("{{ \"unterminated }}", "unclosed action"),
        ] {
            let err = check(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
