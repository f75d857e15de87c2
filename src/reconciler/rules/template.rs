//! A structural check of the Go templates in alert labels and annotations (`{{ $labels.job }}`),
//! which Prometheus parses when it loads a rule file: every action is closed, and every
//! `if`, `range`, `with`, `define` and `block` has its `end`. It does not type-check: a
//! template that passes here can still fail in Prometheus (an unknown function, say), which
//! then refuses the reload and keeps running on its last good rules.

/// The first problem of a template; each names the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{` without its `}}`.
    #[error("unclosed action (a {{{{ without }}}}) in {0:?}")]
    Unclosed(String),
    /// An `{{end}}` with nothing open.
    #[error("unexpected {{{{end}}}} in {0:?}")]
    UnexpectedEnd(String),
    /// An `{{else}}` outside `if`, `range` or `with`.
    #[error("unexpected {{{{else}}}} in {0:?}")]
    UnexpectedElse(String),
    /// An `if`, `range`, `with`, `define` or `block` (the first field) without its `{{end}}`.
    #[error("{{{{{0}}}}} without {{{{end}}}} in {1:?}")]
    NoEnd(&'static str, String),
}

/// Checks the template `text`, naming the first problem.
pub fn check(text: &str) -> Result<(), TemplateError> {
    let mut open: Vec<&'static str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let body_start = start + 2;
        let end = action_end(&rest[body_start..])
            .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
        let body = rest[body_start..body_start + end].trim_start_matches('-');
        let body = body.strip_suffix('-').unwrap_or(body).trim();
        let word = body.split(|c: char| c.is_whitespace() || c == '(').next();
        match word.unwrap_or_default() {
            "if" => open.push("if"),
            "range" => open.push("range"),
            "with" => open.push("with"),
            "define" => open.push("define"),
            "block" => open.push("block"),
            "end" => {
                open.pop()
                    .ok_or_else(|| TemplateError::UnexpectedEnd(text.to_string()))?;
            }
            "else" if !matches!(open.last(), Some(&("if" | "range" | "with"))) => {
                return Err(TemplateError::UnexpectedElse(text.to_string()));
            }
            _ => {}
        }
        rest = &rest[body_start + end + 2..];
    }
    match open.last() {
        Some(w) => Err(TemplateError::NoEnd(w, text.to_string())),
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
    use super::{TemplateError, check};

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
        let text = |t: &str| t.to_string();
        for (bad, error) in [
            (
                "{{ $labels.job ",
                TemplateError::Unclosed(text("{{ $labels.job ")),
            ),
            (
                "{{ if $value }}x",
                TemplateError::NoEnd("if", text("{{ if $value }}x")),
            ),
            (
                "x{{ end }}",
                TemplateError::UnexpectedEnd(text("x{{ end }}")),
            ),
            (
                "{{ else }}",
                TemplateError::UnexpectedElse(text("{{ else }}")),
            ),
            (
                "{{ \"unterminated }}",
                TemplateError::Unclosed(text("{{ \"unterminated }}")),
            ),
        ] {
            assert_eq!(check(bad), Err(error), "{bad}");
        }
        assert_eq!(
            TemplateError::NoEnd("if", text("{{ if $value }}x")).to_string(),
            "{{if}} without {{end}} in \"{{ if $value }}x\""
        );
    }
}
