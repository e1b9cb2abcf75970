//! Flags of independent parts in one command line, without their internal argument ids
//! colliding.
//!
//! clap identifies every argument by an id (by default the field name), and ids must be unique
//! in a command: two flattened structs that both have a field `env` or `manifest` cannot share
//! one parser, even when their flags (`--docker-env`, `--ecs-env`) differ. The backends'
//! settings are therefore added to the manager's command under namespaced ids
//! ([`add_namespaced`]) and read back by re-parsing just their own flags
//! ([`extract_namespaced`]), so `--help` lists them all and every flag keeps its `env` twin.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Command, FromArgMatches};

fn namespaced_id(prefix: &str, id: &str) -> String {
    format!("{prefix}.{id}")
}

/// `command` plus every argument of `T`, under ids `<prefix>.<id>`, listed in `--help` under
/// `heading`.
pub fn add_namespaced<T: Args>(command: Command, prefix: &str, heading: &str) -> Command {
    let own = T::augment_args(Command::new(prefix.to_owned()));
    own.get_arguments().fold(command, |command, arg| {
        let id = namespaced_id(prefix, arg.get_id().as_str());
        command.arg(arg.clone().id(id).help_heading(heading.to_owned()))
    })
}

/// Reads `T` from `matches` of a command built with [`add_namespaced`]: the flags given on
/// the command line are parsed again by `T`'s own parser, which also applies its env twins and
/// defaults.
pub fn extract_namespaced<T: Args + FromArgMatches>(
    matches: &ArgMatches,
    prefix: &str,
) -> Result<T, clap::Error> {
    let own = T::augment_args(Command::new(prefix.to_owned()).no_binary_name(true));
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    for arg in own.get_arguments() {
        let id = namespaced_id(prefix, arg.get_id().as_str());
        if matches.value_source(&id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(long) = arg.get_long() else {
            continue;
        };
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => argv.push(format!("--{long}").into()),
            ArgAction::Count => {
                let times = matches.get_count(&id);
                argv.extend((0..times).map(|_| format!("--{long}").into()));
            }
            _ => {
                for occurrence in matches.get_raw_occurrences(&id).into_iter().flatten() {
                    for value in occurrence {
                        let mut flag = std::ffi::OsString::from(format!("--{long}="));
                        flag.push(value);
                        argv.push(flag);
                    }
                }
            }
        }
    }
    let own_matches = own.try_get_matches_from(argv)?;
    T::from_arg_matches(&own_matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, clap::Args)]
    struct Alpha {
        #[arg(long = "alpha-env", env = "TEST_CLI_ALPHA_ENV", value_delimiter = ';')]
        env: Vec<String>,
        #[arg(long = "alpha-on")]
        on: bool,
        #[arg(long = "alpha-size", default_value_t = 3)]
        size: u32,
    }

    #[derive(Debug, Clone, PartialEq, clap::Args)]
    struct Beta {
        #[arg(long = "beta-env")]
        env: Vec<String>,
    }

    fn command() -> Command {
        let command = Command::new("test");
        let command = add_namespaced::<Alpha>(command, "alpha", "Alpha");
        add_namespaced::<Beta>(command, "beta", "Beta")
    }

    #[test]
    fn same_field_names_live_side_by_side() {
        let matches = command()
            .try_get_matches_from([
                "test",
                "--alpha-env",
                "A=1;B=2",
                "--alpha-env=C=3",
                "--alpha-on",
                "--beta-env",
                "X=y",
            ])
            .unwrap();
        let alpha: Alpha = extract_namespaced(&matches, "alpha").unwrap();
        assert_eq!(alpha.env, ["A=1", "B=2", "C=3"]);
        assert!(alpha.on);
        assert_eq!(alpha.size, 3);
        let beta: Beta = extract_namespaced(&matches, "beta").unwrap();
        assert_eq!(beta.env, ["X=y"]);
    }

    #[test]
    fn defaults_and_bad_values() {
        let matches = command().try_get_matches_from(["test"]).unwrap();
        let alpha: Alpha = extract_namespaced(&matches, "alpha").unwrap();
        assert_eq!(
            alpha,
            Alpha {
                env: vec![],
                on: false,
                size: 3
            }
        );
        let error = command()
            .try_get_matches_from(["test", "--alpha-size", "many"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--alpha-size"), "{error}");
    }
}
