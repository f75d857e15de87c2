//! The Prometheus version as the operator reads it (`semver.ParseTolerant`): `v3.14`,
//! `3.14.0`, `v2.55.1-rc.0`. It names the image tag and gates flags.

use std::fmt;

/// The operator's default Prometheus version (v0.94.1).
pub const DEFAULT: &str = "3.14.0";

/// A parsed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major, minor, patch.
    pub numbers: (u64, u64, u64),
    /// `-pre` and `+build`, as written.
    pub suffix: String,
}

impl Version {
    /// Parses `spec.version` (unset: the operator's default), tolerating a leading `v` and a
    /// missing minor or patch number as Go's `semver.ParseTolerant` does.
    pub fn of(spec_version: Option<&str>) -> Result<Self, String> {
        let text = spec_version.map(str::trim).filter(|v| !v.is_empty());
        let text = text.unwrap_or(DEFAULT);
        let bad = || format!("spec.version: {text:?} is not a version such as v3.14.0");
        let bare = text.strip_prefix('v').unwrap_or(text);
        let end = bare.find(['-', '+']).unwrap_or(bare.len());
        let (core, suffix) = bare.split_at(end);
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 || (parts.len() < 3 && !suffix.is_empty()) {
            return Err(bad());
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            let leading_zero = part.len() > 1 && part.starts_with('0');
            if part.is_empty() || leading_zero || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *slot = part.parse().map_err(|_| bad())?;
        }
        let suffix_ok = suffix.len() != 1
            && suffix[1.min(suffix.len())..]
                .split(['.', '+', '-'])
                .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !suffix.is_empty() && !suffix_ok {
            return Err(bad());
        }
        Ok(Self {
            numbers: (numbers[0], numbers[1], numbers[2]),
            suffix: suffix.to_string(),
        })
    }

    /// Whether this version is at least `major.minor.patch` (a pre-release is below its
    /// release, as in semver).
    pub fn at_least(&self, major: u64, minor: u64, patch: u64) -> bool {
        let wanted = (major, minor, patch);
        self.numbers > wanted || (self.numbers == wanted && !self.suffix.starts_with('-'))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.numbers;
        write!(f, "{a}.{b}.{c}{}", self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_parse_tolerant_does() {
        let v = |s| Version::of(Some(s)).map(|v| v.to_string());
        assert_eq!(v("v3.14").unwrap(), "3.14.0");
        assert_eq!(v(" 2.45.1 ").unwrap(), "2.45.1");
        assert_eq!(v("v2").unwrap(), "2.0.0");
        assert_eq!(v("v3.0.0-rc.1").unwrap(), "3.0.0-rc.1");
        assert_eq!(Version::of(None).unwrap().to_string(), DEFAULT);
        assert_eq!(Version::of(Some("")).unwrap().to_string(), DEFAULT);
        for bad in [
            "latest",
            "v3.x",
            "3.1.2.3",
            "01.2.3",
            "3.1-rc",
            "3.1.0-",
            "3.1.0-a..b",
        ] {
            let e = v(bad).unwrap_err();
            assert!(e.starts_with("spec.version: "), "{bad}: {e}");
        }
    }

    #[test]
    fn a_pre_release_is_below_its_release() {
        let v = |s| Version::of(Some(s)).unwrap();
        assert!(v("3.11.0").at_least(3, 11, 0));
        assert!(!v("3.11.0-rc.0").at_least(3, 11, 0));
        assert!(v("3.11.1-rc.0").at_least(3, 11, 0));
        assert!(!v("2.55.9").at_least(3, 0, 0));
    }
}
