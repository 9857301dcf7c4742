//! The scorecard as users write it: Port's JSON/YAML shape, which is also the `spec`
//! of a pave `Scorecard` object. Parsing, and the static checks (`problems`) that the
//! API server cannot do and `kubectl pave score` on a file needs.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition;
use crate::entity::parse_property;

/// The API group whose objects `from_value` unwraps (`spec` is the scorecard).
const PAVE_GROUP: &str = "platform.pave.dev/";

/// A scorecard as Port writes it; the same shape is a pave Scorecard's `spec`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Scorecard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Which components are evaluated; all when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Query>,
    /// Lowest first. Port fills in Basic, Bronze, Silver, Gold when a scorecard
    /// names none, so a scorecard exported from Port without levels means those.
    #[serde(default = "port_default_levels")]
    pub levels: Vec<Level>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One step of a scorecard's ladder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Level {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A check that belongs to one level.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Rule {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The title of the level this rule belongs to.
    pub level: String,
    pub query: Query,
}

/// Conditions joined by a combinator. Port's old format lists them under `rules`,
/// its current one under `conditions`; exactly one of the two should be given.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Query {
    pub combinator: Combinator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

impl Query {
    /// The conditions in effect. When both lists are given (a problem) both count, so
    /// nothing the author wrote is silently ignored.
    pub fn all_conditions(&self) -> impl Iterator<Item = &Condition> {
        self.conditions
            .iter()
            .flatten()
            .chain(self.rules.iter().flatten())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Combinator {
    And,
    Or,
}

/// `property operator value`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Condition {
    pub property: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Port's comparison operators, with Port's spelling (including its `doesNotContains`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Operator {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "containsAny")]
    ContainsAny,
    #[serde(rename = "doesNotContains")]
    DoesNotContain,
    #[serde(rename = "beginsWith")]
    BeginsWith,
    #[serde(rename = "doesNotBeginsWith")]
    DoesNotBeginWith,
    #[serde(rename = "endsWith")]
    EndsWith,
    #[serde(rename = "doesNotEndsWith")]
    DoesNotEndWith,
    #[serde(rename = "isEmpty")]
    IsEmpty,
    #[serde(rename = "isNotEmpty")]
    IsNotEmpty,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "notIn")]
    NotIn,
    #[serde(rename = "between")]
    Between,
}

impl Operator {
    pub const ALL: [Operator; 18] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Lt,
        Operator::Le,
        Operator::Gt,
        Operator::Ge,
        Operator::Contains,
        Operator::ContainsAny,
        Operator::DoesNotContain,
        Operator::BeginsWith,
        Operator::DoesNotBeginWith,
        Operator::EndsWith,
        Operator::DoesNotEndWith,
        Operator::IsEmpty,
        Operator::IsNotEmpty,
        Operator::In,
        Operator::NotIn,
        Operator::Between,
    ];

    /// The name Port (and the YAML) uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Contains => "contains",
            Operator::ContainsAny => "containsAny",
            Operator::DoesNotContain => "doesNotContains",
            Operator::BeginsWith => "beginsWith",
            Operator::DoesNotBeginWith => "doesNotBeginsWith",
            Operator::EndsWith => "endsWith",
            Operator::DoesNotEndWith => "doesNotEndsWith",
            Operator::IsEmpty => "isEmpty",
            Operator::IsNotEmpty => "isNotEmpty",
            Operator::In => "in",
            Operator::NotIn => "notIn",
            Operator::Between => "between",
        }
    }

    /// Whether the operator reads `value` at all.
    pub fn needs_value(self) -> bool {
        !matches!(self, Operator::IsEmpty | Operator::IsNotEmpty)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that makes a scorecard (or one of its rules) unusable as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The rule's identifier; `None` for the levels and the filter.
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "rule {rule:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why a value is not a scorecard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScoreError {
    /// A Kubernetes object of another kind or API group.
    #[error("not a Scorecard: {0}")]
    NotAScorecard(String),
    /// The scorecard's shape is wrong; `location` says where (`rules[2] "has-owner"`).
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("not valid YAML: {0}")]
    Yaml(String),
}

fn port_default_levels() -> Vec<Level> {
    [
        ("Basic", "paleBlue"),
        ("Bronze", "bronze"),
        ("Silver", "silver"),
        ("Gold", "gold"),
    ]
    .into_iter()
    .map(|(title, color)| Level {
        title: title.to_owned(),
        color: Some(color.to_owned()),
    })
    .collect()
}

impl Scorecard {
    /// Parses a Port scorecard (JSON or YAML value), or a pave Scorecard object
    /// (`apiVersion: platform.pave.dev/...`, `kind: Scorecard`): its `spec` then.
    pub fn from_value(value: Value) -> Result<Scorecard, ScoreError> {
        let value = unwrap_object(value)?;
        match serde_json::from_value::<Scorecard>(value.clone()) {
            Ok(scorecard) => Ok(scorecard),
            Err(err) => Err(locate_error(&value, err)),
        }
    }

    /// `from_value` over YAML (or JSON, which is YAML) text: what `kubectl pave score
    /// -f file` reads.
    pub fn from_yaml_str(text: &str) -> Result<Scorecard, ScoreError> {
        let value: Value =
            serde_yaml::from_str(text).map_err(|err| ScoreError::Yaml(err.to_string()))?;
        Scorecard::from_value(value)
    }

    /// The index of the level with this title (the first, if titles repeat).
    pub fn level_index(&self, title: &str) -> Option<usize> {
        self.levels.iter().position(|level| level.title == title)
    }

    /// Problems that make rules unusable as written, each naming its rule. Evaluation
    /// still works on such a scorecard (a broken rule fails with an error), so a
    /// controller can report these as a condition and keep scoring the rest.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let scorecard_problem = |message: String| Problem {
            rule: None,
            message,
        };

        if self.levels.is_empty() {
            problems.push(scorecard_problem("the scorecard has no levels".into()));
        }
        let mut seen_levels = BTreeMap::new();
        for level in &self.levels {
            if level.title.is_empty() {
                problems.push(scorecard_problem("a level has an empty title".into()));
            } else if seen_levels.insert(level.title.as_str(), ()).is_some() {
                problems.push(scorecard_problem(format!(
                    "level title {:?} appears more than once",
                    level.title
                )));
            }
        }

        if let Some(filter) = &self.filter {
            for message in query_problems(filter) {
                problems.push(scorecard_problem(format!("filter: {message}")));
            }
        }

        let mut seen_rules: BTreeMap<&str, usize> = BTreeMap::new();
        for rule in &self.rules {
            let mut push = |message: String| {
                problems.push(Problem {
                    rule: Some(rule.identifier.clone()),
                    message,
                })
            };
            if rule.identifier.is_empty() {
                push("the rule has an empty identifier".into());
            } else {
                let count = seen_rules.entry(&rule.identifier).or_default();
                *count += 1;
                // Once per duplicated identifier, on its second occurrence.
                if *count == 2 {
                    push("another rule has the same identifier".into());
                }
            }
            if self.level_index(&rule.level).is_none() {
                let titles: Vec<&str> = self.levels.iter().map(|l| l.title.as_str()).collect();
                push(format!(
                    "level {:?} is not one of the scorecard's levels {titles:?}",
                    rule.level
                ));
            }
            for message in query_problems(&rule.query) {
                push(message);
            }
        }
        problems
    }
}

/// A pave object carries the scorecard in `spec`; Port's own JSON has no `kind`.
fn unwrap_object(value: Value) -> Result<Value, ScoreError> {
    let Value::Object(mut object) = value else {
        return Ok(value);
    };
    if !object.contains_key("kind") && !object.contains_key("apiVersion") {
        return Ok(Value::Object(object));
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "Scorecard" || !api_version.starts_with(PAVE_GROUP) {
        return Err(ScoreError::NotAScorecard(format!(
            "expected apiVersion {PAVE_GROUP}v1alpha1 and kind Scorecard, got apiVersion {api_version:?} and kind {kind:?}"
        )));
    }
    match object.remove("spec") {
        Some(spec) => Ok(spec),
        None => Err(ScoreError::Invalid {
            location: "spec".into(),
            message: "a Scorecard object needs a spec".into(),
        }),
    }
}

/// serde's message alone does not say which rule is wrong; re-parse the parts to find
/// the first one that fails and name it.
fn locate_error(value: &Value, err: serde_json::Error) -> ScoreError {
    let invalid = |location: String, err: serde_json::Error| ScoreError::Invalid {
        location,
        message: err.to_string(),
    };
    if let Some(rules) = value.get("rules").and_then(Value::as_array) {
        for (index, rule) in rules.iter().enumerate() {
            if let Err(err) = Rule::deserialize(rule) {
                let location = match rule.get("identifier").and_then(Value::as_str) {
                    Some(id) => format!("rules[{index}] {id:?}"),
                    None => format!("rules[{index}]"),
                };
                return invalid(location, err);
            }
        }
    }
    if let Some(levels) = value.get("levels").and_then(Value::as_array) {
        for (index, level) in levels.iter().enumerate() {
            if let Err(err) = Level::deserialize(level) {
                return invalid(format!("levels[{index}]"), err);
            }
        }
    }
    if let Some(filter) = value.get("filter").filter(|f| !f.is_null())
        && let Err(err) = Query::deserialize(filter)
    {
        return invalid("filter".into(), err);
    }
    invalid("scorecard".into(), err)
}

/// Problems of one query, as messages (the caller adds which rule or the filter).
fn query_problems(query: &Query) -> Vec<String> {
    let mut problems = Vec::new();
    match (&query.rules, &query.conditions) {
        (Some(_), Some(_)) => problems.push(
            "the query has both `rules` (Port's old format) and `conditions` (its current one); keep one"
                .to_owned(),
        ),
        (None, None) => {
            problems.push("the query has neither `conditions` nor `rules`".to_owned())
        }
        _ => {}
    }
    let mut empty = true;
    for (index, condition) in query.all_conditions().enumerate() {
        empty = false;
        let name = &condition.property;
        if let Err(message) = parse_property(name) {
            problems.push(format!("condition {index}: {message}"));
        }
        if let Err(message) =
            condition::compile_operand(condition.operator, condition.value.as_ref())
        {
            problems.push(format!(
                "condition {index} ({name:?} {}): {message}",
                condition.operator
            ));
        }
    }
    if empty && (query.rules.is_some() || query.conditions.is_some()) {
        let meaning = match query.combinator {
            Combinator::And => "always passes",
            Combinator::Or => "never passes",
        };
        problems.push(format!("the query has no conditions, so it {meaning}"));
    }
    problems
}
