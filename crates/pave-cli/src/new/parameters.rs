//! A template's parameters: its `spec.parameters` pages (JSON Schema objects, as
//! Backstage's form shows them one page at a time), the values given on the command
//! line, defaults, questions on a terminal, and the schema check that comes before
//! any step runs.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Map, Value as Json};

/// One page of parameters: a JSON Schema object with a title.
#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    pub schema: Json,
}

/// A parameter that does not fit its page: which one, on which page, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub parameter: String,
    pub page: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "parameter `{}` (page \"{}\"): {}",
            self.parameter, self.page, self.message
        )
    }
}

impl Page {
    /// The pages of `spec.parameters`, which is one schema object or a list of them.
    pub fn all(parameters: Option<&Json>) -> Vec<Page> {
        let schemas: Vec<&Json> = match parameters {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(pages)) => pages.iter().collect(),
            Some(page) => vec![page],
        };
        schemas
            .into_iter()
            .enumerate()
            .map(|(index, schema)| Page {
                title: schema["title"]
                    .as_str()
                    .map_or_else(|| format!("page {}", index + 1), str::to_owned),
                schema: schema.clone(),
            })
            .collect()
    }

    /// The page's properties, in the order the template lists them.
    pub fn properties(&self) -> impl Iterator<Item = (&String, &Json)> {
        self.schema["properties"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.iter())
    }

    fn required(&self) -> impl Iterator<Item = &str> {
        self.schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
    }
}

/// Where a parameter is declared: its page and its schema.
pub fn declared<'a>(pages: &'a [Page], name: &str) -> Option<(&'a Page, &'a Json)> {
    pages.iter().find_map(|page| {
        page.schema["properties"]
            .get(name)
            .map(|schema| (page, schema))
    })
}

/// A `--set name=value`: the value is read as the parameter's declared type (a
/// number, a boolean, a list or an object as YAML), and as a string otherwise.
pub fn parse_set(pages: &[Page], set: &str) -> Result<(String, Json), String> {
    let (name, text) = set
        .split_once('=')
        .ok_or_else(|| format!("--set {set}: expected NAME=VALUE"))?;
    let Some((_, schema)) = declared(pages, name) else {
        let known: Vec<&str> = pages
            .iter()
            .flat_map(|p| p.properties().map(|(n, _)| n.as_str()))
            .collect();
        return Err(format!(
            "--set {name}: the template has no parameter `{name}` (it has {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    Ok((name.to_owned(), typed(schema, text)))
}

fn typed(schema: &Json, text: &str) -> Json {
    let kind = schema["type"].as_str().unwrap_or("string");
    if kind == "string" {
        return Json::String(text.to_owned());
    }
    // Left as a string when it does not parse, so the schema check names the type.
    serde_yaml::from_str::<Json>(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}

/// Fills in each page's defaults for the parameters not given.
pub fn apply_defaults(pages: &[Page], values: &mut Map<String, Json>) {
    for page in pages {
        for (name, schema) in page.properties() {
            if let (None, Some(default)) = (values.get(name), schema.get("default")) {
                values.insert(name.clone(), default.clone());
            }
        }
    }
}

/// The required parameters that have no value, with their page.
pub fn missing<'a>(pages: &'a [Page], values: &Map<String, Json>) -> Vec<(&'a Page, &'a str)> {
    pages
        .iter()
        .flat_map(|page| page.required().map(move |name| (page, name)))
        .filter(|(_, name)| !values.contains_key(*name))
        .collect()
}

/// Asks for each missing required parameter on the terminal: its title and
/// description, the choices of an `enum`, and for an `OwnerPicker` the owners the
/// catalog knows. Browser-only hints (`ui:field`, `ui:widget`, …) fall back to this
/// plain question. Errors when standard input is not a terminal.
pub fn ask(
    pages: &[Page],
    values: &mut Map<String, Json>,
    owners: impl FnOnce() -> Vec<String>,
) -> Result<(), Vec<Problem>> {
    let missing = missing(pages, values);
    if missing.is_empty() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(missing
            .into_iter()
            .map(|(page, name)| Problem {
                parameter: name.to_owned(),
                page: page.title.clone(),
                message: "is required; give it with --set or --values (standard input is \
                          not a terminal to ask on)"
                    .to_owned(),
            })
            .collect());
    }
    let mut owners = Some(owners);
    let mut known_owners = Vec::new();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut stderr = std::io::stderr().lock();
    for (page, name) in missing {
        let schema = &page.schema["properties"][name];
        let title = schema["title"].as_str().unwrap_or(name);
        let _ = writeln!(stderr, "{} — {title}", page.title);
        if let Some(description) = schema["description"].as_str() {
            let _ = writeln!(stderr, "  {description}");
        }
        let mut choices: Vec<String> = schema["enum"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if choices.is_empty() && schema["ui:field"] == "OwnerPicker" {
            if let Some(list) = owners.take() {
                known_owners = list();
            }
            if !known_owners.is_empty() {
                let _ = writeln!(stderr, "  owners in the catalog (a number, or any owner):");
                choices = known_owners.clone();
            }
        }
        choices.dedup();
        for (i, choice) in choices.iter().enumerate() {
            let _ = writeln!(stderr, "  {}) {choice}", i + 1);
        }
        let _ = write!(stderr, "{name}: ");
        let _ = stderr.flush();
        let answer = match lines.next() {
            Some(Ok(line)) => line.trim().to_owned(),
            _ => {
                return Err(vec![Problem {
                    parameter: name.to_owned(),
                    page: page.title.clone(),
                    message: "is required and no answer came".to_owned(),
                }]);
            }
        };
        let answer = match answer.parse::<usize>() {
            Ok(n) if (1..=choices.len()).contains(&n) => choices[n - 1].clone(),
            _ => answer,
        };
        if !answer.is_empty() {
            values.insert(name.to_owned(), typed(schema, &answer));
        }
    }
    Ok(())
}

/// Checks the values against every page's schema: `required`, `type`, `enum`,
/// `pattern`, `minLength`/`maxLength` and the rest of JSON Schema.
pub fn validate(pages: &[Page], values: &Map<String, Json>) -> Vec<Problem> {
    let instance = Json::Object(values.clone());
    let mut problems = Vec::new();
    for page in pages {
        // The form's hints are not JSON Schema; they are left for the validator to skip.
        let validator = match jsonschema::validator_for(&page.schema) {
            Ok(validator) => validator,
            Err(e) => {
                problems.push(Problem {
                    parameter: e.schema_path().as_str().trim_start_matches('/').to_owned(),
                    page: page.title.clone(),
                    message: format!("the template's schema is not valid JSON Schema: {e}"),
                });
                continue;
            }
        };
        // Page by page, each page's parameters by name.
        let position = |name: &str| {
            page.properties()
                .position(|(n, _)| n == name.split('.').next().unwrap_or(name))
        };
        let mut found: Vec<Problem> = validator
            .iter_errors(&instance)
            .map(|e| problem(page, &e))
            .collect();
        found.sort_by_key(|p| position(&p.parameter));
        problems.extend(found);
    }
    problems
}

fn problem(page: &Page, error: &jsonschema::ValidationError<'_>) -> Problem {
    use jsonschema::error::ValidationErrorKind as Kind;
    let path = error
        .instance_path()
        .as_str()
        .trim_start_matches('/')
        .replace('/', ".");
    let (parameter, message) = match error.kind() {
        Kind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            let parameter = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            (parameter, "is required".to_owned())
        }
        Kind::Type { kind } => {
            let declared = page.schema["properties"][&path]["type"]
                .as_str()
                .map_or_else(|| format!("{kind:?}"), str::to_owned);
            (
                path,
                format!("must be of type {declared}, not {}", error.instance()),
            )
        }
        Kind::Enum { options } => (
            path,
            format!("must be one of {options}, not {}", error.instance()),
        ),
        Kind::Pattern { pattern } => (
            path,
            format!("{} does not match the pattern {pattern}", error.instance()),
        ),
        Kind::MinLength { limit } => (
            path,
            format!("{} is shorter than {limit} characters", error.instance()),
        ),
        Kind::MaxLength { limit } => (
            path,
            format!("{} is longer than {limit} characters", error.instance()),
        ),
        _ => (path, error.to_string()),
    };
    Problem {
        parameter,
        page: page.title.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pages() -> Vec<Page> {
        Page::all(Some(&json!([
            {"title": "Basics", "required": ["name", "owner"], "properties": {
                "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 20,
                         "ui:autofocus": true},
                "owner": {"type": "string", "ui:field": "OwnerPicker"},
                "replicas": {"type": "integer", "default": 2},
            }},
            {"title": "Location", "properties": {
                "tier": {"type": "string", "enum": ["gold", "silver"], "default": "silver"},
                "short": {"type": "string", "minLength": 3},
            }},
        ])))
    }

    #[test]
    fn values_are_typed_defaulted_and_checked_page_by_page() {
        let pages = pages();
        let mut values = Map::new();
        for set in ["name=Bad_Name", "replicas=three", "tier=bronze", "short=ab"] {
            let (name, value) = parse_set(&pages, set).unwrap();
            values.insert(name, value);
        }
        apply_defaults(&pages, &mut values);
        let problems: Vec<String> = validate(&pages, &values)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                r#"parameter `name` (page "Basics"): "Bad_Name" does not match the pattern ^[a-z][a-z0-9-]*$"#,
                r#"parameter `owner` (page "Basics"): is required"#,
                r#"parameter `replicas` (page "Basics"): must be of type integer, not "three""#,
                r#"parameter `short` (page "Location"): "ab" is shorter than 3 characters"#,
                r#"parameter `tier` (page "Location"): must be one of ["gold","silver"], not "bronze""#,
            ]
        );
    }

    #[test]
    fn defaults_fill_what_was_not_given_and_typed_values_parse() {
        let pages = pages();
        let mut values = Map::new();
        let (name, value) = parse_set(&pages, "replicas=5").unwrap();
        values.insert(name, value);
        apply_defaults(&pages, &mut values);
        assert_eq!(
            Json::Object(values.clone()),
            json!({"replicas": 5, "tier": "silver"})
        );
        let missing: Vec<&str> = missing(&pages, &values).iter().map(|(_, n)| *n).collect();
        assert_eq!(missing, ["name", "owner"]);
        assert!(
            parse_set(&pages, "colour=red")
                .unwrap_err()
                .contains("has no parameter `colour`")
        );
        assert!(
            parse_set(&pages, "name")
                .unwrap_err()
                .contains("NAME=VALUE")
        );
    }
}
