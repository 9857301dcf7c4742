//! The Argo CD health checks in `argocd/health/`, run the way Argo CD runs them, and
//! `kubectl pave argocd-health`, which must print exactly those scripts.
//!
//! The layout and the test format are Argo CD's own (`resource_customizations/`):
//! `<group>/<Kind>/health.lua`, beside it `health_test.yaml` listing
//! `{healthStatus: {status, message}, inputPath}` and the inputs in `testdata/`. As in
//! Argo CD's test, a test finds its script by the input object's own `apiVersion`
//! group and `kind`, and expects status and message exactly.
//!
//! The scripts run in Lua 5.1 (Argo CD's gopher-lua is a Lua 5.1) with only what Argo
//! CD gives a script from `argocd-cm`: the base, table and package libraries and an
//! `os` with only `time` and `date`, under its one-second limit. There is no string
//! library, so a script calling `string.*` or a method on a string fails here as it
//! would in Argo CD.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, VmState};
use serde::Deserialize;
use serde_json::Value;

/// How long Argo CD lets a script run.
const LIMIT: Duration = Duration::from_secs(1);

/// The statuses Argo CD accepts; any other becomes `Unknown`.
const STATUSES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

fn checks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("argocd/health")
}

/// A `health_test.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HealthTest {
    health_status: HealthStatus,
    input_path: String,
}

/// What a script returns, as Argo CD reads it.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct HealthStatus {
    status: String,
    #[serde(default)]
    message: String,
}

/// Every `health.lua` under `argocd/health/`, by `<group>/<Kind>` (Argo CD's key).
fn scripts() -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    for path in files(&checks_dir()) {
        if path.file_name().is_some_and(|n| n == "health.lua") {
            let dir = path.parent().unwrap();
            let key = dir.strip_prefix(checks_dir()).unwrap();
            let key = key.to_str().unwrap().replace('\\', "/");
            found.insert(key, path);
        }
    }
    found
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Argo CD's key for an object: `<group>/<Kind>`, or `<Kind>` for the core group.
fn key_of(obj: &Value) -> Result<String, String> {
    let api_version = obj["apiVersion"].as_str().ok_or("no apiVersion")?;
    let kind = obj["kind"].as_str().ok_or("no kind")?;
    Ok(match api_version.split_once('/') {
        Some((group, _)) => format!("{group}/{kind}"),
        None => kind.to_owned(),
    })
}

fn read_yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Lua state with what Argo CD opens for a script from `argocd-cm`: base, package,
/// table, and its "safe" `os` (only `time` and `date`), also what `require("os")`
/// gives. No string, math, io or debug library.
fn argocd_lua() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::PACKAGE | StdLib::OS,
        LuaOptions::default(),
    )?;
    let os: Table = lua.globals().get("os")?;
    let safe = lua.create_table()?;
    safe.set("time", os.get::<Function>("time")?)?;
    safe.set("date", os.get::<Function>("date")?)?;
    lua.globals().set("os", &safe)?;
    let package: Table = lua.globals().get("package")?;
    package.get::<Table>("loaded")?.set("os", safe)?;
    Ok(lua)
}

/// A JSON value as Argo CD hands it to Lua: `null` is `nil` (a key set to null is
/// absent), numbers are Lua numbers, and an array skips its nulls as gopher-lua's
/// `Append` does.
fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<mlua::Value> {
    Ok(match value {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => mlua::Value::Number(n.as_f64().expect("a JSON number is an f64")),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table()?;
            for item in items.iter().filter(|i| !i.is_null()) {
                table.raw_push(to_lua(lua, item)?)?;
            }
            mlua::Value::Table(table)
        }
        Value::Object(map) => {
            let table = lua.create_table()?;
            for (key, item) in map {
                table.raw_set(key.as_str(), to_lua(lua, item)?)?;
            }
            mlua::Value::Table(table)
        }
    })
}

/// Runs `script` on `obj` as Argo CD's `ExecuteHealthLua` does: `obj` as a global,
/// the chunk's return value read as `{status, message}`, a status Argo CD does not
/// know turned into `Unknown`.
fn run(name: &str, script: &str, obj: &Value) -> Result<HealthStatus, String> {
    let fail = |e: mlua::Error| format!("{name}: {e}");
    let lua = argocd_lua().map_err(fail)?;
    let start = Instant::now();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(1000),
        move |_, _| {
            if start.elapsed() > LIMIT {
                Err(mlua::Error::runtime("ran past Argo CD's limit of 1 s"))
            } else {
                Ok(VmState::Continue)
            }
        },
    )
    .map_err(fail)?;
    lua.globals()
        .set("obj", to_lua(&lua, obj).map_err(fail)?)
        .map_err(fail)?;
    let returned: mlua::Value = lua.load(script).set_name(name).eval().map_err(fail)?;
    let mlua::Value::Table(table) = returned else {
        return Err(format!(
            "{name}: expect table output from Lua script, not {}",
            returned.type_name()
        ));
    };
    let field = |key: &str| -> Result<String, String> {
        match table.get::<mlua::Value>(key).map_err(fail)? {
            mlua::Value::Nil => Ok(String::new()),
            mlua::Value::String(s) => Ok(s.to_str().map_err(fail)?.to_owned()),
            other => Err(format!(
                "{name}: {key} is a {}, not a string",
                other.type_name()
            )),
        }
    };
    let status = HealthStatus {
        status: field("status")?,
        message: field("message")?,
    };
    if !STATUSES.contains(&status.status.as_str()) {
        return Ok(HealthStatus {
            status: "Unknown".into(),
            message: "Lua returned an invalid health status".into(),
        });
    }
    Ok(status)
}

fn relative(path: &Path) -> String {
    path.strip_prefix(checks_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_health_test_gives_what_it_expects() {
    let scripts = scripts();
    assert!(!scripts.is_empty(), "no health.lua under argocd/health");
    let mut failures = Vec::new();
    let mut used = BTreeSet::new();
    let mut ran = 0;
    for script_path in scripts.values() {
        let dir = script_path.parent().unwrap();
        let tests_path = dir.join("health_test.yaml");
        let Ok(text) = fs::read_to_string(&tests_path) else {
            failures.push(format!("{} has no health_test.yaml", relative(script_path)));
            continue;
        };
        let tests: HealthTests = match serde_yaml::from_str(&text) {
            Ok(tests) => tests,
            Err(e) => {
                failures.push(format!("{}: {e}", relative(&tests_path)));
                continue;
            }
        };
        if tests.tests.is_empty() {
            failures.push(format!("{} lists no tests", relative(&tests_path)));
        }
        for test in tests.tests {
            let input = dir.join(&test.input_path);
            let name = relative(&input);
            used.insert(input.clone());
            let obj = read_yaml(&input);
            let key = match key_of(&obj) {
                Ok(key) => key,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let Some(script) = scripts.get(&key) else {
                failures.push(format!("{name}: no health.lua for {key}"));
                continue;
            };
            let source = fs::read_to_string(script).unwrap();
            ran += 1;
            match run(&relative(script), &source, &obj) {
                Ok(got) if got == test.health_status => {}
                Ok(got) => failures.push(format!(
                    "{name}: expected {:?}, got {got:?}",
                    test.health_status
                )),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
    }
    // Every input is some test's, and is of a kind that has a check.
    for path in files(&checks_dir()) {
        let in_testdata = path
            .parent()
            .is_some_and(|p| p.file_name().is_some_and(|n| n == "testdata"));
        if !in_testdata {
            continue;
        }
        let name = relative(&path);
        match key_of(&read_yaml(&path)) {
            Ok(key) if !scripts.contains_key(&key) => {
                failures.push(format!("{name}: no health.lua for its kind {key}"));
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        if !used.contains(&path) {
            failures.push(format!("{name}: no health_test.yaml uses it"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran > 0);
}

/// The scripts with comments and string literals blanked out, for looking at code.
fn code_only(script: &str) -> String {
    let mut out = String::new();
    for line in script.lines() {
        let mut chars = line.chars().peekable();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    if c == '\\' {
                        chars.next();
                    } else if c == q {
                        quote = None;
                    }
                    out.push(' ');
                }
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    out.push(' ');
                }
                None if c == '-' && chars.peek() == Some(&'-') => break,
                None => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

/// Where `word` starts in `code` as a name of its own (not the tail of a longer one).
fn uses<'a>(code: &'a str, word: &str) -> Vec<&'a str> {
    let name_char = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word)
        .filter(|(at, _)| !code[..*at].ends_with(name_char))
        .map(|(at, _)| &code[at + word.len()..])
        .collect()
}

#[test]
fn the_scripts_use_only_what_argo_cd_gives_them() {
    // Running every branch in the sandbox is the real check; this catches a library
    // used on a line no test reaches.
    let forbidden = [
        "string.",
        "math.",
        "io.",
        "debug.",
        "coroutine.",
        "utf8.",
        "goto",
        "require",
    ];
    let mut problems = Vec::new();
    for path in scripts().values() {
        let name = relative(path);
        let code = code_only(&fs::read_to_string(path).unwrap());
        for word in forbidden {
            if !uses(&code, word).is_empty() {
                problems.push(format!("{name} uses {word}"));
            }
        }
        for rest in uses(&code, "os.") {
            if !rest.starts_with("time") && !rest.starts_with("date") {
                problems.push(format!("{name} uses os. beyond time and date"));
            }
        }
        // A method call needs a metatable; strings have none without the string library.
        if code.contains(':') {
            problems.push(format!("{name} calls a method"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_code_check_reads_code_only() {
    let code = code_only("local s = 'string.upper' -- string.upper\nreturn tostring(x) .. s\n");
    assert!(uses(&code, "string.").is_empty(), "{code}");
    assert_eq!(uses("x = string.upper(y)", "string.").len(), 1);
}

#[test]
fn the_sandbox_is_argo_cds() {
    let obj = serde_json::json!({"metadata": {"name": "x"}});
    let ok = |script: &str| run("probe", script, &obj);
    // What Argo CD gives.
    assert_eq!(
        ok("local t = {} table.insert(t, tostring(1)) \
            return {status = 'Healthy', message = t[1] .. type(os.time()) .. type(os.date('%Y'))}")
        .unwrap(),
        HealthStatus {
            status: "Healthy".into(),
            message: "1numberstring".into()
        }
    );
    // What it does not.
    for script in [
        "return {status = string.upper('healthy')}",
        "local s = 'Healthy' return {status = s:lower()}",
        "return {status = tostring(math.floor(1))}",
        "io.open('/etc/passwd')",
        "os.execute('true')",
        "return {status = os.getenv('HOME')}",
        "return {status = require('string').upper('x')}",
    ] {
        assert!(ok(script).is_err(), "{script} ran");
    }
}

#[test]
fn argo_cd_rules_on_what_a_script_returns() {
    let obj = serde_json::json!({"status": null, "list": [null, "a"]});
    let run = |script: &str| run("probe", script, &obj);
    assert_eq!(
        run("return {status = 'Fine'}").unwrap(),
        HealthStatus {
            status: "Unknown".into(),
            message: "Lua returned an invalid health status".into()
        }
    );
    assert!(run("return 'Healthy'").is_err());
    // JSON null is nil, and an array skips it, as in Argo CD.
    assert_eq!(
        run("if obj.status == nil and obj.list[1] == 'a' then return {status = 'Healthy'} end")
            .unwrap()
            .status,
        "Healthy"
    );
    let start = Instant::now();
    let endless = run("while true do end").unwrap_err();
    assert!(endless.contains("limit"), "{endless}");
    assert!(start.elapsed() < LIMIT * 5);
}

fn kubectl_pave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-pave"))
        .arg("argocd-health")
        .args(args)
        .output()
        .expect("kubectl-pave runs")
}

/// `data` must hold one key per tested script, each exactly that script.
fn assert_holds_every_script(config_map: &ConfigMap, namespace: &str) {
    let meta = &config_map.metadata;
    assert_eq!(meta.name.as_deref(), Some("argocd-cm"));
    assert_eq!(meta.namespace.as_deref(), Some(namespace));
    assert_eq!(
        meta.labels,
        Some(BTreeMap::from([(
            "app.kubernetes.io/part-of".to_owned(),
            "argocd".to_owned()
        )]))
    );
    let expected: BTreeMap<String, String> = scripts()
        .into_iter()
        .map(|(key, path)| {
            let (group, kind) = key.split_once('/').expect("pave's kinds have a group");
            (
                format!("resource.customizations.health.{group}_{kind}"),
                fs::read_to_string(path).unwrap(),
            )
        })
        .collect();
    assert_eq!(config_map.data.as_ref(), Some(&expected));
    let mut kinds: Vec<String> = pave_api::crds()
        .into_iter()
        .map(|crd| format!("{}/{}", crd.spec.group, crd.spec.names.kind))
        .collect();
    kinds.sort();
    assert_eq!(scripts().into_keys().collect::<Vec<_>>(), kinds);
}

#[test]
fn argocd_health_prints_an_argocd_cm_patch_with_the_tested_scripts() {
    let out = kubectl_pave(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    // k8s-openapi checks apiVersion v1 and kind ConfigMap.
    let config_map: ConfigMap = serde_yaml::from_str(&yaml).unwrap();
    assert_holds_every_script(&config_map, "argocd");
    assert!(
        yaml.starts_with("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"),
        "{yaml}"
    );
}

#[test]
fn argocd_health_json_into_another_namespace() {
    let out = kubectl_pave(&["--namespace", "gitops", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config_map: ConfigMap = serde_json::from_slice(&out.stdout).unwrap();
    assert_holds_every_script(&config_map, "gitops");
}

#[test]
fn argocd_health_refuses_a_namespace_that_is_no_name() {
    let out = kubectl_pave(&["-n", "Argo_CD"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a Kubernetes namespace name"),
        "{stderr}"
    );
}

#[test]
fn argocd_health_help_says_how_to_install() {
    let out = kubectl_pave(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains(
            "kubectl pave argocd-health | kubectl apply --server-side --field-manager pave -f -"
        ),
        "{help}"
    );
}
