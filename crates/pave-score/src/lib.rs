//! The scorecard engine: Port's scorecards evaluated against catalog Components.
//! Pure: plain data in, plain data out; no I/O, no Kubernetes types. The operator and
//! `kubectl pave score` fill an [`Entity`] per Component and write the [`Evaluation`].
//!
//! - [`model`]: the scorecard as written (Port's old `query.rules` and current
//!   `query.conditions` formats), parsing and static [`Scorecard::problems`];
//! - [`entity`]: what a condition's `property` names, including pave's annotation
//!   aliases (`pagerduty.com/service-id` answers to `pagerduty_service_id`);
//! - `condition`: the operators and their type handling;
//! - [`engine`]: filters, rules and levels.

mod condition;
pub mod engine;
pub mod entity;
pub mod model;
mod value;

pub use engine::{CompiledScorecard, Evaluation, RuleOutcome, evaluate, selects};
pub use entity::{Entity, annotation_alias};
pub use model::{
    Combinator, Condition, Level, Operator, Problem, Query, Rule, ScoreError, Scorecard,
};
