//! PromQL: parsing rule expressions, and `enforcedNamespaceLabel` injected into every selector
//! the way prometheus-operator does it (prom-label-proxy's enforcer: the selector's own
//! matchers on that label are replaced by `label="namespace"`, and the expression is printed
//! again in Prometheus's canonical form).

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{self, Expr};

/// Parses `expr`, or says why it is not PromQL.
pub fn parse(expr: &str) -> Result<Expr, String> {
    let parsed = parser::parse(expr).map_err(|e| format!("could not parse expression: {e}"))?;
    // The crate accepts `{a="1" or b="2"}`, which Prometheus does not.
    let mut or_matchers = false;
    walk(&mut parsed.clone(), &mut |m| {
        or_matchers |= !m.or_matchers.is_empty()
    });
    if or_matchers {
        return Err("could not parse expression: `or` inside a selector is not PromQL".into());
    }
    Ok(parsed)
}

/// `expr` with `label="value"` enforced on every selector, printed again.
pub fn enforce(expr: &str, label: &str, value: &str) -> Result<String, String> {
    let mut parsed = parse(expr)?;
    walk(&mut parsed, &mut |matchers| {
        matchers.matchers.retain(|m| m.name != label);
        matchers
            .matchers
            .push(Matcher::new(MatchOp::Equal, label, value));
    });
    Ok(parsed.to_string())
}

/// Calls `f` on the matchers of every selector in `expr` that prom-label-proxy enforces on
/// (not in an aggregation's parameter, as there).
fn walk(expr: &mut Expr, f: &mut impl FnMut(&mut Matchers)) {
    match expr {
        Expr::Aggregate(a) => walk(&mut a.expr, f),
        Expr::Unary(u) => walk(&mut u.expr, f),
        Expr::Binary(b) => {
            walk(&mut b.lhs, f);
            walk(&mut b.rhs, f);
        }
        Expr::Paren(p) => walk(&mut p.expr, f),
        Expr::Subquery(s) => walk(&mut s.expr, f),
        Expr::VectorSelector(vs) => f(&mut vs.matchers),
        Expr::MatrixSelector(ms) => f(&mut ms.vs.matchers),
        Expr::Call(c) => {
            for arg in &mut c.args.args {
                walk(arg, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_is_enforced_on_every_selector_and_replaces_the_users() {
        assert_eq!(
            enforce(
                r#"sum by (job) (rate(http_requests_total{job="a", namespace="other"}[5m])) / on (job) group_left up"#,
                "namespace",
                "team-a"
            )
            .unwrap(),
            r#"sum by (job) (rate(http_requests_total{job="a",namespace="team-a"}[5m])) / on (job) group_left () up{namespace="team-a"}"#
        );
        assert_eq!(enforce("vector(1)", "namespace", "x").unwrap(), "vector(1)");
        assert_eq!(
            enforce(
                r#"max_over_time(x{namespace=~".+"}[1h:5m])"#,
                "namespace",
                "n"
            )
            .unwrap(),
            r#"max_over_time(x{namespace="n"}[1h:5m])"#
        );
    }

    #[test]
    fn bad_promql_is_named() {
        assert!(
            parse("sum(rate(x[5m])")
                .unwrap_err()
                .contains("could not parse")
        );
        assert!(parse("up{a=\"1\" or b=\"2\"}").unwrap_err().contains("or"));
        assert!(parse("up").is_ok());
    }
}
