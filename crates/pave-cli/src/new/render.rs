//! Templating as Backstage's scaffolder does it, on minijinja (a maintained Jinja2
//! engine) configured for the scaffolder's syntax rather than on a hand-written one.
//!
//! The scaffolder runs nunjucks with `${{ }}` for expressions, and keeps `{% %}` for
//! tags and `{# #}` for comments, with no HTML escaping. minijinja reads the same
//! constructs once given those delimiters. Where the two differ, pave follows
//! nunjucks, or says so in the README:
//! - `none` and undefined print as nothing, as nunjucks prints `null`/`undefined`.
//! - Printing a value that names nothing (`${{ parameters.nmae }}`) is an error, not
//!   an empty string; an `if` on it is still false, and `default` still applies.
//! - A string that is a single `${{ }}` keeps its type (a list stays a list, a
//!   number a number), as in step inputs of the scaffolder. Where the scaffolder
//!   leaves out a key that renders to nothing (a parameter not given), pave keeps
//!   it as null: it prints as nothing, is false in an `if`, is replaced by
//!   `default` and dumps to nothing, as the scaffolder's undefined does, while a
//!   name that was never declared (`values.nmae`) is still an error. A value that
//!   really is null therefore also counts as not given.
//! - `dump` is `JSON.stringify`; `parseRepoUrl`, `parseEntityRef`, `projectSlug` and
//!   `pick` are the scaffolder's own filters. JavaScript methods called on values
//!   (`name.toUpperCase()`) do not exist; their filters (`upper`) do.

use std::collections::BTreeMap;

use minijinja::value::{Kwargs, Value};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, syntax::SyntaxConfig,
};
use serde_json::Value as Json;

/// Any data as a template value.
pub fn value<T: serde::Serialize>(data: T) -> Value {
    Value::from(minijinja::value::Serde(data))
}

/// The scaffolder's template engine: one per run, shared by every step.
pub struct Engine {
    env: Environment<'static>,
}

/// A template that could not be rendered: what is wrong, and on which line of the
/// templated text (1-based), when the engine knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub message: String,
    pub line: Option<usize>,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .variable_delimiters("${{", "}}")
            .block_delimiters("{%", "%}")
            .comment_delimiters("{#", "#}")
            .keep_trailing_newline(true)
            .build()
            .expect("the scaffolder's delimiters are valid");
        env.set_syntax(syntax);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // Printing what names nothing fails; testing it in an `if` does not.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_formatter(|out, state, value| {
            let value = if value.is_none() {
                &Value::UNDEFINED
            } else {
                value
            };
            if value.is_undefined() {
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        env.add_filter("dump", dump);
        env.add_filter("default", default);
        env.add_filter("d", default);
        env.add_filter("parseRepoUrl", parse_repo_url);
        env.add_filter("projectSlug", project_slug);
        env.add_filter("parseEntityRef", parse_entity_ref);
        env.add_filter("pick", pick);
        Engine { env }
    }

    /// Renders `text` (a file of a skeleton, a file name, an input string).
    pub fn render_str(&self, text: &str, context: &Value) -> Result<String, RenderError> {
        self.env
            .render_str(text, context)
            .map_err(|e| explain(&self.env, text, context, &e))
    }

    /// Renders every string in `value`, as the scaffolder renders a step's input: a
    /// string that is one `${{ }}` becomes the expression's value, whatever its type;
    /// one that renders to nothing leaves its key out (`None` at the top).
    pub fn render_value(&self, value: &Json, context: &Value) -> Result<Option<Json>, RenderError> {
        match value {
            Json::String(text) => self.render_string(text, context),
            Json::Array(items) => {
                let mut rendered = Vec::with_capacity(items.len());
                for item in items {
                    rendered.push(self.render_value(item, context)?.unwrap_or(Json::Null));
                }
                Ok(Some(Json::Array(rendered)))
            }
            // A field that renders to nothing stays, as null: declared, without a value
            // (see the module's notes), so that naming it is not naming nothing.
            Json::Object(fields) => {
                let mut rendered = serde_json::Map::new();
                for (key, field) in fields {
                    let field = self.render_value(field, context)?;
                    rendered.insert(key.clone(), field.unwrap_or(Json::Null));
                }
                Ok(Some(Json::Object(rendered)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Whether a step's `if:` holds: a boolean as it is, a string rendered and read
    /// the way the scaffolder reads it (empty, `false` and `0` are false).
    pub fn condition(&self, condition: &Json, context: &Value) -> Result<bool, RenderError> {
        Ok(match self.render_value(condition, context)? {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => b,
            Some(Json::String(s)) => !matches!(s.trim(), "" | "false" | "0"),
            Some(Json::Number(n)) => n.as_f64() != Some(0.0),
            Some(Json::Array(a)) => !a.is_empty(),
            Some(Json::Object(_)) => true,
        })
    }

    fn render_string(&self, text: &str, context: &Value) -> Result<Option<Json>, RenderError> {
        if let Some(expression) = single_expression(text) {
            let compiled = self
                .env
                .compile_expression(expression)
                .map_err(|e| explain(&self.env, text, context, &e))?;
            let value = compiled
                .eval(context)
                .map_err(|e| explain(&self.env, text, context, &e))?;
            if value.is_undefined() {
                return Err(names_nothing(expression, context));
            }
            if value.is_none() {
                return Ok(None);
            }
            return Ok(Some(serde_json::to_value(&value).map_err(|e| {
                RenderError {
                    message: format!("`{text}` gives a value that is not data: {e}"),
                    line: None,
                }
            })?));
        }
        if !text.contains("${{") && !text.contains("{%") && !text.contains("{#") {
            return Ok(Some(Json::String(text.to_owned())));
        }
        let rendered = self.render_str(text, context)?;
        Ok((!rendered.is_empty()).then_some(Json::String(rendered)))
    }
}

/// The expression of a string that is exactly one `${{ expression }}`.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("${{")?.strip_suffix("}}")?;
    (!inner.contains("${{") && !inner.contains("}}")).then_some(inner.trim())
}

/// The expressions of a text, in order: what each `${{ … }}` holds.
pub fn expressions(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        found.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    found
}

/// A failure of the engine in words a template author can act on: for a value that
/// names nothing, which expression and what it could have named.
fn explain(env: &Environment<'_>, text: &str, context: &Value, error: &Error) -> RenderError {
    let line = error.line();
    if error.kind() == ErrorKind::UndefinedError {
        for expression in expressions(text) {
            let undefined = env
                .compile_expression(expression)
                .and_then(|e| e.eval(context))
                .map_or(true, |v| v.is_undefined());
            if undefined {
                return RenderError {
                    line: line.or_else(|| line_of(text, expression)),
                    ..names_nothing(expression, context)
                };
            }
        }
    }
    let mut message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(source) = std::error::Error::source(error) {
        message.push_str(&format!(": {source}"));
    }
    RenderError { message, line }
}

fn line_of(text: &str, expression: &str) -> Option<usize> {
    let at = text.find(expression)?;
    Some(text[..at].matches('\n').count() + 1)
}

/// "`${{ parameters.nmae }}` names nothing", with what the context holds at the
/// level where the name was not found.
pub fn names_nothing(expression: &str, context: &Value) -> RenderError {
    let root: String = expression
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let known = |value: &Value| -> Vec<String> {
        value
            .try_iter()
            .map(|keys| keys.map(|k| k.to_string()).collect())
            .unwrap_or_default()
    };
    let hint = match context.get_attr(&root) {
        Ok(value) if !value.is_undefined() => {
            let names = known(&value);
            if names.is_empty() {
                format!("{root} holds nothing here")
            } else {
                format!("{root} holds {}", names.join(", "))
            }
        }
        _ => format!(
            "there is no `{root}`; templates here can use {}",
            known(context).join(", ")
        ),
    };
    RenderError {
        message: format!("`${{{{ {expression} }}}}` names nothing: {hint}"),
        line: None,
    }
}

/// `default(value, other="", boolean=false)`: `other` when `value` is undefined or
/// null (not given), or with `boolean` also when it is false-ish.
fn default(value: &Value, other: Option<Value>, boolean: Option<bool>) -> Value {
    let missing =
        value.is_undefined() || value.is_none() || (boolean == Some(true) && !value.is_true());
    if missing {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

/// nunjucks' `dump`: `JSON.stringify(value, null, indent)`; what was not given
/// dumps to nothing, as `JSON.stringify(undefined)` does.
fn dump(value: &Value, indent: Option<usize>) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(Value::from(""));
    }
    let invalid = |e: serde_json::Error| {
        Error::new(ErrorKind::BadSerialization, "cannot dump as JSON").with_source(e)
    };
    let text = match indent {
        None | Some(0) => serde_json::to_string(value).map_err(invalid)?,
        Some(width) => {
            let indent = " ".repeat(width);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut out = Vec::new();
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(value, &mut serializer).map_err(invalid)?;
            String::from_utf8(out).expect("serde_json writes UTF-8")
        }
    };
    Ok(Value::from(text))
}

/// The scaffolder's `parseRepoUrl`: `github.com?owner=o&repo=r` (what its
/// RepoUrlPicker produces) into `{host, owner, repo, organization, workspace,
/// project}`, the fields that are given.
fn parse_repo_url(repo_url: &str) -> Result<Value, Error> {
    let parsed =
        repo_url_parts(repo_url).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    Ok(value(&parsed))
}

/// The parts of a RepoUrlPicker value; `host` and `repo` are required.
pub fn repo_url_parts(repo_url: &str) -> Result<BTreeMap<String, String>, String> {
    let url = url::Url::parse(&format!("https://{repo_url}")).map_err(|e| {
        format!("`{repo_url}` is not a repository location such as github.com?owner=o&repo=r: {e}")
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{repo_url}` names no host"))?;
    let mut parts = BTreeMap::from([("host".to_owned(), host.to_owned())]);
    for (key, value) in url.query_pairs() {
        if ["owner", "repo", "organization", "workspace", "project"].contains(&key.as_ref()) {
            parts.insert(key.into_owned(), value.into_owned());
        }
    }
    if !parts.contains_key("repo") {
        return Err(format!(
            "`{repo_url}` names no repo (expected HOST?owner=OWNER&repo=REPO)"
        ));
    }
    Ok(parts)
}

/// The scaffolder's `projectSlug`: `owner/repo` of a repository location.
fn project_slug(repo_url: &str) -> Result<Value, Error> {
    let parts = repo_url_parts(repo_url).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    let owner = parts
        .get("owner")
        .or_else(|| parts.get("organization"))
        .or_else(|| parts.get("workspace"))
        .cloned()
        .unwrap_or_default();
    Ok(Value::from(format!("{owner}/{}", parts["repo"])))
}

/// The scaffolder's `parseEntityRef`: `[kind:][namespace/]name` into `{kind,
/// namespace, name}`, with `defaultKind` and `defaultNamespace` from the keyword
/// arguments (the namespace defaults to `default`).
fn parse_entity_ref(
    reference: &str,
    options: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let option = |name: &str| -> Result<Option<String>, Error> {
        if let Some(value) = kwargs.get::<Option<String>>(name)? {
            return Ok(Some(value));
        }
        Ok(options
            .as_ref()
            .and_then(|o| o.get_attr(name).ok())
            .filter(|v| !v.is_undefined() && !v.is_none())
            .map(|v| v.to_string()))
    };
    let (default_kind, default_namespace) = (option("defaultKind")?, option("defaultNamespace")?);
    kwargs.assert_all_used()?;
    let (kind, rest) = match reference.split_once(':') {
        Some((kind, rest)) => (Some(kind.to_owned()), rest),
        None => (default_kind, reference),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((namespace, name)) => (namespace.to_owned(), name),
        None => (
            default_namespace.unwrap_or_else(|| "default".to_owned()),
            rest,
        ),
    };
    let Some(kind) = kind.filter(|k| !k.is_empty()) else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("entity reference `{reference}` names no kind and no defaultKind is given"),
        ));
    };
    if name.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("entity reference `{reference}` names no entity"),
        ));
    }
    Ok(value(BTreeMap::from([
        ("kind", kind),
        ("namespace", namespace),
        ("name", name.to_owned()),
    ])))
}

/// The scaffolder's `pick`: one field of an object.
fn pick(value: &Value, key: &str) -> Result<Value, Error> {
    value.get_attr(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        value(json!({
            "parameters": {"name": "Payments", "owner": "team-a", "tags": ["a", "b"],
                           "repoUrl": "github.com?owner=my-org&repo=payments", "empty": null},
            "steps": {"publish": {"output": {"remoteUrl": "file:///r.git"}}},
        }))
    }

    #[test]
    fn renders_the_scaffolders_syntax_and_leaves_other_braces_alone() {
        let engine = Engine::new();
        let text = "name: ${{ parameters.name | lower }}\nrun: echo ${ HOME } {{ x }}\n{% if parameters.owner %}owner: ${{ parameters.owner }}{% endif %}\n";
        assert_eq!(
            engine.render_str(text, &context()).unwrap(),
            "name: payments\nrun: echo ${ HOME } {{ x }}\nowner: team-a\n"
        );
    }

    #[test]
    fn a_single_expression_keeps_its_type_and_nothing_is_null() {
        let engine = Engine::new();
        let input = json!({"tags": "${{ parameters.tags }}", "empty": "${{ parameters.empty }}",
                           "url": "${{ steps.publish.output.remoteUrl }}", "n": 3,
                           "repo": "${{ parameters.repoUrl | parseRepoUrl }}"});
        assert_eq!(
            engine.render_value(&input, &context()).unwrap().unwrap(),
            json!({"tags": ["a", "b"], "url": "file:///r.git", "n": 3, "empty": null,
                   "repo": {"host": "github.com", "owner": "my-org", "repo": "payments"}})
        );
    }

    #[test]
    fn the_scaffolders_filters() {
        let engine = Engine::new();
        let render = |t: &str| engine.render_str(t, &context()).unwrap();
        assert_eq!(render("${{ parameters.tags | dump }}"), r#"["a","b"]"#);
        assert_eq!(render("${{ parameters.name | dump }}"), r#""Payments""#);
        assert_eq!(
            render("${{ parameters.repoUrl | projectSlug }}"),
            "my-org/payments"
        );
        assert_eq!(
            render("${{ parameters.name | replace('P', 'p') | upper | trim }}"),
            "PAYMENTS"
        );
        assert_eq!(render("${{ parameters.missing | default('x') }}"), "x");
        assert_eq!(
            render(
                "${{ parameters.empty | default('x') }}|${{ parameters.empty | dump }}|${{ parameters.empty }}"
            ),
            "x||"
        );
        assert_eq!(
            render("${{ '' | default('x') }}${{ '' | default('y', true) }}"),
            "y"
        );
        assert_eq!(
            render("${{ (parameters.owner | parseEntityRef(defaultKind='group')).kind }}"),
            "group"
        );
        assert_eq!(
            render("${{ ('user:ops/ana' | parseEntityRef).namespace }}"),
            "ops"
        );
        assert_eq!(render("${{ parameters | pick('owner') }}"), "team-a");
        assert_eq!(
            render("${{ parameters.tags[0] + '/' + parameters.owner }}"),
            "a/team-a"
        );
    }

    #[test]
    fn a_name_that_names_nothing_is_an_error_that_says_what_there_is() {
        let engine = Engine::new();
        let error = engine
            .render_str("a\nb: ${{ parameters.nmae }}", &context())
            .unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(
            error
                .message
                .contains("`${{ parameters.nmae }}` names nothing"),
            "{error}"
        );
        assert!(
            error
                .message
                .contains("parameters holds empty, name, owner"),
            "{error}"
        );
        let error = engine
            .render_value(&json!("${{ step.publish.output.remoteUrl }}"), &context())
            .unwrap_err();
        assert!(error.message.contains("there is no `step`"), "{error}");
        // A condition on a parameter that was not given is false; on a name that
        // names nothing, an error.
        assert!(
            engine
                .condition(&json!("${{ parameters.nmae }}"), &context())
                .is_err()
        );
        assert!(
            !engine
                .condition(&json!("${{ parameters.empty }}"), &context())
                .unwrap()
        );
    }

    #[test]
    fn parse_repo_url_needs_a_repo() {
        assert!(
            repo_url_parts("github.com?owner=o")
                .unwrap_err()
                .contains("names no repo")
        );
        assert_eq!(
            repo_url_parts("git.example?repo=r").unwrap()["host"],
            "git.example"
        );
    }
}
