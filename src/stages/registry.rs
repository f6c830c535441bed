//! The machinery behind the operator registration in `stages/mod.rs`: the `operators!` macro turns that one
//! table into the [`Operator`] enum, its name, group, accepted column types and parameter names, each
//! group's list and the parse table; `fitted!` makes the [`Fitted`] enum and its `apply`. Macros, so that
//! the compiler keeps all of these in step with the table instead of a reviewer.
//!
//! [`Operator`]: super::Operator
//! [`Fitted`]: super::Fitted

use crate::error::Result;
use crate::frame::ColumnType;
use crate::vocab::Task;
use crate::vocab::reader::TableReader;

/// What an operator's parse function receives: the step's table, the pipeline's task and the operator's
/// registered name.
pub struct ParseInput<'r, 'a, 's> {
    pub table: &'r mut TableReader<'a, 's>,
    pub task: Task,
    pub name: &'static str,
}

/// One registered operator: its group, its name (a step's `operator = "…"` and its serde tag) and how a
/// step's table becomes one.
pub struct Registration {
    pub group: super::Group,
    pub name: &'static str,
    pub parse: fn(ParseInput<'_, '_, '_>) -> Result<super::Operator>,
}

/// The column types an operator accepts, as the registration names them.
pub const NUMERIC: &[ColumnType] = &[ColumnType::Numeric];
pub const CATEGORICAL: &[ColumnType] = &[ColumnType::Categorical];
pub const ANY: &[ColumnType] = &[ColumnType::Numeric, ColumnType::Categorical];

/// `operators! { Group { Variant = "name", ACCEPTS, ParamsType, parse, param_names; … } … }`; a variant
/// without parameters is `Variant = "name", ACCEPTS;`. `parse` is a `fn(ParseInput) -> Result<ParamsType>`
/// (a closure), `param_names` a `fn(&ParamsType) -> Vec<&'static str>`. Every group of [`super::Group`]
/// must have its block (the generated `Group::operators` match is exhaustive).
macro_rules! operators {
    (@parse $variant:ident) => {
        |_| Ok(Operator::$variant)
    };
    (@parse $variant:ident, $ty:ty, $parse:expr) => {
        |input| {
            let parse: fn($crate::stages::registry::ParseInput<'_, '_, '_>) -> $crate::error::Result<$ty> = $parse;
            parse(input).map(Operator::$variant)
        }
    };
    (@bind $ty:ty, $params:ident) => {
        $params
    };
    (@names) => {
        Vec::new()
    };
    (@names $ty:ty, $names:expr, $params:ident) => {{
        let names: fn(&$ty) -> Vec<&'static str> = $names;
        names($params)
    }};
    ($( $group:ident { $( $variant:ident = $name:literal, $accepts:ident $(, $ty:ty, $parse:expr, $names:expr)? ; )* } )*) => {
        /// A step's operator and its checked parameters (serialised canonically into the stage key; the
        /// tag is the registered name).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "operator")]
        pub enum Operator {
            $($( #[serde(rename = $name)] $variant $( ($ty) )?, )*)*
        }

        impl Operator {
            /// Every registered operator, group by group, each group's in its listed order.
            pub const REGISTERED: &[$crate::stages::registry::Registration] = &[
                $($( $crate::stages::registry::Registration {
                    group: Group::$group,
                    name: $name,
                    parse: $crate::stages::registry::operators!(@parse $variant $(, $ty, $parse)?),
                }, )*)*
            ];

            /// The registered name: the step's `operator = "…"`.
            pub fn name(&self) -> &'static str {
                match self {
                    $($( Operator::$variant { .. } => $name, )*)*
                }
            }

            /// The group whose steps may name this operator.
            #[allow(clippy::match_same_arms)]
            pub fn group(&self) -> Group {
                match self {
                    $($( Operator::$variant { .. } => Group::$group, )*)*
                }
            }

            /// Which column types the operator accepts.
            #[allow(clippy::match_same_arms)]
            fn accepts(&self) -> &'static [ColumnType] {
                match self {
                    $($( Operator::$variant { .. } => $crate::stages::registry::$accepts, )*)*
                }
            }

            /// The keys a step with this operator may have besides `name`, `operator`, `columns` and
            /// `exclude`.
            #[allow(clippy::match_same_arms)]
            pub fn param_names(&self) -> Vec<&'static str> {
                match self {
                    $($( Operator::$variant $( ($crate::stages::registry::operators!(@bind $ty, params)) )? =>
                        $crate::stages::registry::operators!(@names $( $ty, $names, params )?), )*)*
                }
            }
        }

        impl Group {
            /// The operators a step of this group may name, in registration order.
            pub fn operators(self) -> &'static [&'static str] {
                match self {
                    $( Group::$group => &[$( $name ),*], )*
                }
            }
        }
    };
}
pub(crate) use operators;

/// `fitted! { Variant(Type), … }`: the [`super::Fitted`] enum (tagged by the variant's `snake_case` name) and
/// its `apply`, which calls each state's own `apply`.
macro_rules! fitted {
    ($( $variant:ident($ty:ty), )*) => {
        /// What fitting a step learned. Serialised (canonical JSON) as the stage's output state.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "operator", rename_all = "snake_case")]
        pub enum Fitted {
            $( $variant($ty), )*
        }

        impl Fitted {
            /// Applies the learned state to any frame with the fitted columns: train, test or new rows.
            pub fn apply(&self, frame: Frame) -> Result<Frame> {
                match self {
                    $( Fitted::$variant(f) => f.apply(frame), )*
                }
            }
        }
    };
}
pub(crate) use fitted;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::super::{Group, Operator};
    use crate::vocab::Task;
    use crate::vocab::reader::{Source, TableReader, parse_document};

    /// Parses `text`'s `[[group]]` tables as steps: (the written operator name, what it parsed to).
    fn steps(text: &str) -> Vec<(Group, String, crate::error::Result<Operator>)> {
        let src = Source {
            path: PathBuf::from("x.toml"),
            text,
        };
        let doc = parse_document(&src).unwrap();
        let mut root = TableReader::new(&src, doc.get_ref(), doc.span(), "");
        let mut out = Vec::new();
        for group in Group::ALL {
            for mut t in root.table_list(group.name()).unwrap() {
                let name = t.req_str("operator", "the operator").unwrap();
                let parsed = Operator::parse(group, &name, &mut t, Task::Regression).and_then(|op| {
                    // Every key of the example is one the operator declares.
                    let _ = (t.str("name"), t.raw("columns"), t.str_list("exclude"));
                    let mut known = vec!["name", "operator", "columns", "exclude"];
                    known.extend(op.param_names());
                    t.finish(&known).map(|()| op)
                });
                out.push((group, name.value, parsed));
            }
        }
        out
    }

    fn only<T>(mut items: Vec<T>) -> T {
        assert_eq!(items.len(), 1);
        items.remove(0)
    }

    #[test]
    fn each_group_lists_exactly_its_registered_operators_and_no_name_twice() {
        let mut seen = BTreeSet::new();
        for r in Operator::REGISTERED {
            assert!(seen.insert(r.name), "\"{}\" is registered twice", r.name);
        }
        for group in Group::ALL {
            let registered: Vec<&str> = Operator::REGISTERED
                .iter()
                .filter(|r| r.group == group)
                .map(|r| r.name)
                .collect();
            assert_eq!(group.operators(), registered.as_slice(), "{}", group.name());
        }
    }

    /// The bug this registry replaced: a name in a group's list without a parse arm silently parsed as
    /// `cap`. Every registered name, alone in its table, parses to an operator of that name and group (or
    /// fails for a missing parameter); never to another one.
    #[test]
    fn every_registered_name_parses_to_its_own_operator_never_another() {
        for r in Operator::REGISTERED {
            let text = format!("[[{}]]\noperator = \"{}\"\n", r.group.name(), r.name);
            let (group, name, parsed) = only(steps(&text));
            assert_eq!((group, name.as_str()), (r.group, r.name));
            if let Ok(op) = parsed {
                assert_eq!(
                    (op.name(), op.group()),
                    (r.name, r.group),
                    "\"{}\" parsed as another operator",
                    r.name
                );
            }
        }
    }

    /// Every step example in docs/pipeline-format.md parses to the operator it names, with only the keys
    /// that operator declares, serialises under its registered name as tag and reads back the same; and
    /// every registered operator has an example there.
    #[test]
    fn documented_examples_parse_to_the_operator_they_name_and_cover_the_registry() {
        let doc = include_str!("../../docs/pipeline-format.md");
        let mut shown = BTreeSet::new();
        for block in doc.split("```toml\n").skip(1) {
            let block = &block[..block.find("```").unwrap()];
            let headers: Vec<&str> = block.lines().filter(|l| l.starts_with('[')).collect();
            let steps_only = !headers.is_empty()
                && headers
                    .iter()
                    .all(|h| Group::ALL.iter().any(|g| h.trim() == format!("[[{}]]", g.name())));
            if !steps_only {
                continue;
            }
            for (group, name, parsed) in steps(block) {
                let op = parsed.unwrap_or_else(|e| panic!("{e}\nin the example:\n{block}"));
                assert_eq!((op.name(), op.group()), (name.as_str(), group));
                let json = serde_json::to_value(&op).unwrap();
                assert_eq!(json["operator"], name.as_str(), "the serde tag of {name}");
                assert_eq!(serde_json::from_value::<Operator>(json).unwrap(), op);
                shown.insert(name);
            }
        }
        for r in Operator::REGISTERED {
            assert!(
                shown.contains(r.name),
                "no example of `{}` in docs/pipeline-format.md",
                r.name
            );
        }
    }

    #[test]
    fn an_unregistered_name_is_an_error_with_a_hint_not_some_other_operator() {
        let (_, _, parsed) = only(steps("[[transform]]\noperator = \"caps\"\n"));
        let err = parsed.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown operator \"caps\" in [[transform]] (known: \"standard_scaler\"")
        );
        assert_eq!(err.hint().as_deref(), Some("did you mean \"cap\"?"));
        let (_, _, parsed) = only(steps("[[transform]]\noperator = \"one_hot\"\n"));
        assert_eq!(
            parsed.unwrap_err().hint().as_deref(),
            Some("\"one_hot\" belongs in [[encode]]")
        );
    }
}
