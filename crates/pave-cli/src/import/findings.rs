//! What the import finds in one document, each finding placed at the line of the
//! field it is about, and the readers of Backstage's value shapes (strings, lists of
//! strings, mappings) that report a wrong shape instead of failing on it.
//!
//! The readers never stop at the first problem: a user fixing a catalog wants every
//! problem of a file at once, so each reader reports and returns what it could read.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::Severity;
use crate::lines::{Document, FieldPath};

/// A diagnostic within the document being imported.
#[derive(Debug)]
pub struct Finding {
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

/// Collects the findings of one document, placing each at its field's line.
pub struct Findings<'a> {
    pub document: &'a Document<'a>,
    pub list: Vec<Finding>,
    /// Fields already reported as wrong, so the schema check does not repeat them.
    wrong: Vec<FieldPath>,
}

impl<'a> Findings<'a> {
    pub fn new(document: &'a Document<'a>) -> Self {
        Self {
            document,
            list: Vec::new(),
            wrong: Vec::new(),
        }
    }

    /// The line of the field at `path` (or of its nearest parent that can be found).
    pub fn line(&self, path: &FieldPath) -> usize {
        self.document.line_of(path)
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|f| f.severity == Severity::Error)
    }

    fn push(&mut self, path: &FieldPath, severity: Severity, message: String) {
        self.list.push(Finding {
            line: self.line(path),
            severity,
            message,
        });
    }

    pub fn error(&mut self, path: &FieldPath, message: String) {
        self.wrong.push(path.clone());
        self.push(path, Severity::Error, message);
    }

    pub fn warning(&mut self, path: &FieldPath, message: String) {
        self.push(path, Severity::Warning, message);
    }

    pub fn note(&mut self, path: &FieldPath, message: String) {
        self.push(path, Severity::Note, message);
    }

    pub fn already_wrong(&self, path: &FieldPath) -> bool {
        self.wrong.iter().any(|wrong| path.0.starts_with(&wrong.0))
    }

    /// An optional string; absent and null are `None`.
    pub fn string(&mut self, value: Option<&Value>, path: &FieldPath) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => {
                self.error(path, format!("{path}: {}", expected_string(other)));
                None
            }
        }
    }

    /// A list of strings; absent and null are an empty list.
    pub fn strings(&mut self, value: Option<&Value>, path: &FieldPath) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    let path = path.index(index);
                    if item.is_null() {
                        self.error(&path, format!("{path} is empty"));
                    }
                    self.string(Some(item), &path)
                })
                .collect(),
            Some(other) => {
                self.error(
                    path,
                    format!(
                        "{path}: expected a list of strings, found {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A mapping; absent and null are `None`.
    pub fn mapping<'v>(
        &mut self,
        value: Option<&'v Value>,
        path: &FieldPath,
    ) -> Option<&'v Mapping> {
        match value? {
            Value::Null => None,
            Value::Mapping(mapping) => Some(mapping),
            other => {
                self.error(
                    path,
                    format!("{path}: expected a mapping, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// Labels or annotations: string keys to string values, as Kubernetes stores them.
    pub fn string_map(
        &mut self,
        value: Option<&Value>,
        path: &FieldPath,
    ) -> Option<BTreeMap<String, String>> {
        let mapping = self.mapping(value, path)?;
        let mut map = BTreeMap::new();
        for (key, value) in self.keyed(mapping, path) {
            let path = path.key(&key);
            match value {
                Value::String(text) => {
                    map.insert(key, text.clone());
                }
                other => self.error(&path, format!("{path}: {}", expected_string(other))),
            }
        }
        (!map.is_empty()).then_some(map)
    }

    /// The entries of `mapping` whose keys are strings; any other key is an error.
    pub fn keyed<'v>(
        &mut self,
        mapping: &'v Mapping,
        path: &FieldPath,
    ) -> Vec<(String, &'v Value)> {
        let mut entries = Vec::new();
        for (key, value) in mapping {
            match key.as_str() {
                Some(key) => entries.push((key.to_owned(), value)),
                None => self.error(
                    path,
                    format!("{path}: keys must be strings, found {}", describe(key)),
                ),
            }
        }
        entries
    }

    /// Warns about every key of `mapping` that is not in `known`.
    pub fn warn_unknown(&mut self, mapping: &Mapping, path: &FieldPath, known: &[&str]) {
        for (key, _) in self.keyed(mapping, path) {
            if !known.contains(&key.as_str()) {
                self.left_out(&path.key(&key));
            }
        }
    }

    /// The warning for a Backstage field pave has no place for.
    pub fn left_out(&mut self, field: &FieldPath) {
        self.warning(
            field,
            format!("{field}: pave has no field for it, so it is left out"),
        );
    }
}

/// "a Group", "an API".
pub fn a(kind: &str) -> String {
    // A "U" is read "you": a User.
    let article = if kind.starts_with(['A', 'E', 'I', 'O']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

/// `expected a string` with what was found, and the fix for the usual cause: YAML
/// reads unquoted `12345`, `true` or `1.0` as numbers and booleans.
pub fn expected_string(found: &Value) -> String {
    match found {
        Value::Bool(_) | Value::Number(_) => {
            let text = serde_yaml::to_string(found).unwrap_or_default();
            format!(
                "expected a string, found {}; write it in quotes: \"{}\"",
                describe(found),
                text.trim()
            )
        }
        other => format!("expected a string, found {}", describe(other)),
    }
}

pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
