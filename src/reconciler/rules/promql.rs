//! PromQL: parsing rule expressions, and `enforcedNamespaceLabel` injected into every selector
//! the way prometheus-operator does it (prom-label-proxy's enforcer: the selector's own
//! matchers on that label are replaced by `label="namespace"`, and the expression is printed
//! again in Prometheus's canonical form).

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{self, Expr};

/// Why an expression is not PromQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The parser's message.
    #[error("could not parse expression: {0}")]
    Syntax(String),
    /// `{a="1" or b="2"}`: the parser accepts it, Prometheus does not.
    #[error("could not parse expression: `or` inside a selector is not PromQL")]
    OrInSelector,
}

/// Parses `expr`, or says why it is not PromQL.
pub fn parse(expr: &str) -> Result<Expr, ParseError> {
    let parsed = parser::parse(expr).map_err(ParseError::Syntax)?;
    let mut or_matchers = false;
    walk(&mut parsed.clone(), &mut |m| {
        or_matchers |= !m.or_matchers.is_empty()
    });
    if or_matchers {
        return Err(ParseError::OrInSelector);
    }
    Ok(parsed)
}

/// `expr` with `label="value"` enforced on every selector, printed again.
pub fn enforce(expr: &str, label: &str, value: &str) -> Result<String, ParseError> {
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
        assert!(matches!(
            parse("sum(rate(x[5m])"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            parse("up{a=\"1\" or b=\"2\"}").unwrap_err(),
            ParseError::OrInSelector
        );
        assert!(parse("up").is_ok());
    }
}
