//! The goals `make bench` enforces: each section says which of its targets were met, the
//! report shows them all, and the bench exits non-zero naming every enforced target missed.

use std::fmt::Write as _;

/// One goal and what the run measured against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub goal: String,
    pub measured: String,
    pub met: bool,
    /// Missing it fails `make bench`; informational targets are only reported.
    pub enforced: bool,
}

impl Target {
    pub fn enforced(
        name: impl Into<String>,
        goal: impl Into<String>,
        measured: String,
        met: bool,
    ) -> Self {
        Target {
            name: name.into(),
            goal: goal.into(),
            measured,
            met,
            enforced: true,
        }
    }

    pub fn informational(
        name: impl Into<String>,
        goal: impl Into<String>,
        measured: String,
        met: bool,
    ) -> Self {
        Target {
            enforced: false,
            ..Target::enforced(name, goal, measured, met)
        }
    }

    /// `met`, `not met`, or `not met (reported only)`.
    pub fn verdict(&self) -> &'static str {
        match (self.met, self.enforced) {
            (true, _) => "met",
            (false, true) => "**not met**",
            (false, false) => "not met (reported, not enforced)",
        }
    }
}

/// The markdown table of `targets`.
pub fn markdown(targets: &[Target]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "| Target | Goal | Measured | Met? |");
    let _ = writeln!(md, "|---|---|---|---|");
    for t in targets {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            t.name,
            t.goal,
            t.measured,
            t.verdict()
        );
    }
    md
}

/// The enforced targets that were missed, one line each.
pub fn missed(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| t.enforced && !t.met)
        .map(|t| format!("{}: goal {}, measured {}", t.name, t.goal, t.measured))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enforced_misses_fail() {
        let targets = [
            Target::enforced("a", "≤ 1 s", "0.5 s".into(), true),
            Target::enforced("b", "0", "3".into(), false),
            Target::informational("c", "≥ 100×", "40×".into(), false),
        ];
        assert_eq!(missed(&targets), vec!["b: goal 0, measured 3".to_string()]);
        let md = markdown(&targets);
        assert!(md.contains("| b | 0 | 3 | **not met** |"));
        assert!(md.contains("| c | ≥ 100× | 40× | not met (reported, not enforced) |"));
    }
}
