//! `publish:git`: the workspace pushed as a new repository to a git URL, with git
//! itself; and `publish:github`, which pave maps to `publish:git` against a remote
//! the platform team configures, since pave does not call GitHub's API.
//!
//! The push never forces: a remote whose branch already holds commits refuses it,
//! so an existing repository is never overwritten. The remote repository must exist
//! (git servers create repositories their own way), except a `file://` one, which is
//! created empty when missing.
//!
//! Outputs, as Backstage's publish actions name them: `remoteUrl` (where it was
//! pushed), `repoContentsUrl` (`remoteUrl#branch`, the npm-style reference to a
//! branch of a plain git repository) and `commitHash`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value as Json, json};

use super::render::repo_url_parts;

/// The remotes `publish:github` (and the other hosted publish actions) push to, by
/// host: URL templates with `{owner}`, `{repo}`, `{organization}`, `{workspace}` and
/// `{project}` from the `repoUrl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remotes(pub BTreeMap<String, String>);

/// Where pave looks for its configuration when `--config` is not given.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PAVE_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("pave").join("config.yaml"))
}

impl Remotes {
    /// The `remotes:` of a configuration file (absent file: none), then the
    /// `--remote HOST=URL` flags, which win.
    pub fn load(
        config: Option<&Path>,
        explicit: bool,
        flags: &[String],
    ) -> Result<Remotes, String> {
        let mut remotes = Remotes::default();
        if let Some(path) = config {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let value: Json = serde_yaml::from_str(&text)
                        .map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
                    for (host, url) in value["remotes"].as_object().into_iter().flatten() {
                        let url = url.as_str().ok_or_else(|| {
                            format!("{}: remotes.{host} must be a URL template", path.display())
                        })?;
                        remotes.0.insert(host.clone(), url.to_owned());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
                Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
            }
        }
        for flag in flags {
            let (host, url) = flag
                .split_once('=')
                .ok_or_else(|| format!("--remote {flag}: expected HOST=URL"))?;
            remotes.0.insert(host.to_owned(), url.to_owned());
        }
        Ok(remotes)
    }

    /// The git URL a hosted `repoUrl` (`github.com?owner=o&repo=r`) maps to.
    pub fn resolve(&self, action: &str, repo_url: &str) -> Result<String, String> {
        let parts = repo_url_parts(repo_url).map_err(|e| format!("repoUrl: {e}"))?;
        let host = &parts["host"];
        let Some(template) = self.0.get(host) else {
            return Err(format!(
                "{action} needs a git remote for {host}: pave pushes with git and does not \
                 call {host}'s API; configure one with --remote {host}=URL or `remotes:` \
                 in pave's config file, e.g. {host}=ssh://git@{host}/{{owner}}/{{repo}}.git"
            ));
        };
        let mut url = template.clone();
        for key in ["owner", "repo", "organization", "workspace", "project"] {
            let placeholder = format!("{{{key}}}");
            if url.contains(&placeholder) {
                let value = parts.get(key).ok_or_else(|| {
                    format!("repoUrl `{repo_url}` has no {key}, which the remote for {host} uses")
                })?;
                // A name, not a path: it must not move the repository elsewhere.
                let is_name = !value.is_empty()
                    && value != "."
                    && value != ".."
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !is_name {
                    return Err(format!(
                        "repoUrl `{repo_url}`: {key} `{value}` is not a name (letters, digits, -, _ and .)"
                    ));
                }
                url = url.replace(&placeholder, value);
            }
        }
        Ok(url)
    }
}

/// The inputs of a publish, after mapping: where, which branch, what message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub remote: String,
    pub branch: String,
    pub message: String,
    pub source: PathBuf,
    pub author: Option<(String, String)>,
}

impl Publish {
    /// `publish:git`'s inputs, or `publish:github`'s mapped through `remotes`.
    pub fn from_input(
        action: &str,
        input: &Map<String, Json>,
        remotes: &Remotes,
    ) -> Result<Publish, String> {
        let text = |key: &str| input.get(key).and_then(Json::as_str).map(str::to_owned);
        let repo_url = text("repoUrl").ok_or("input repoUrl is required")?;
        let remote = if action == "publish:git" {
            if !looks_like_git_url(&repo_url) {
                return Err(format!(
                    "repoUrl `{repo_url}` is not a git URL (file://, ssh://, git://, https:// or \
                     user@host:path); a HOST?owner=…&repo=… location is publish:github's"
                ));
            }
            repo_url
        } else {
            remotes.resolve(action, &repo_url)?
        };
        let source = super::fetch::target(text("sourcePath").as_deref())?;
        let author = match (text("gitAuthorName"), text("gitAuthorEmail")) {
            (Some(name), Some(email)) => Some((name, email)),
            (Some(name), None) => Some((name, "scaffolder@pave.invalid".to_owned())),
            (None, Some(email)) => Some(("pave scaffolder".to_owned(), email)),
            (None, None) => None,
        };
        Ok(Publish {
            remote,
            branch: text("defaultBranch").unwrap_or_else(|| "main".to_owned()),
            message: text("gitCommitMessage").unwrap_or_else(|| "initial commit".to_owned()),
            source,
            author,
        })
    }

    /// The outputs the publish will have, known before it runs but for the commit.
    pub fn outputs(&self, commit: &str) -> Map<String, Json> {
        json!({
            "remoteUrl": self.remote,
            "repoContentsUrl": format!("{}#{}", self.remote, self.branch),
            "commitHash": commit,
        })
        .as_object()
        .cloned()
        .expect("an object")
    }

    /// Commits the workspace's `sourcePath` as the first commit of `branch` and pushes
    /// it. Returns the commit.
    pub fn push(&self, workspace: &Path) -> Result<String, String> {
        let dir = workspace.join(&self.source);
        if !dir.is_dir() {
            return Err(format!(
                "sourcePath {} is not a directory of the workspace",
                self.source.display()
            ));
        }
        if dir.join(".git").exists() {
            return Err(format!("{} is already a git repository", dir.display()));
        }
        if let Some(path) = self.remote.strip_prefix("file://")
            && !Path::new(path).exists()
        {
            // Its HEAD names the branch pushed, so a clone (Argo CD's) checks it out.
            git(
                Path::new("."),
                &[
                    "init",
                    "--quiet",
                    "--bare",
                    "--initial-branch",
                    &self.branch,
                    path,
                ],
            )?;
        }
        let (name, email) = match &self.author {
            Some(author) => author.clone(),
            None => (
                config("user.name").unwrap_or_else(|| "pave scaffolder".to_owned()),
                config("user.email").unwrap_or_else(|| "scaffolder@pave.invalid".to_owned()),
            ),
        };
        git(&dir, &["init", "--quiet", "--initial-branch", &self.branch])?;
        git(&dir, &["add", "--all"])?;
        let identity = [format!("user.name={name}"), format!("user.email={email}")];
        git(
            &dir,
            &[
                "-c",
                &identity[0],
                "-c",
                &identity[1],
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                &self.message,
            ],
        )?;
        let commit = git(&dir, &["rev-parse", "HEAD"])?;
        git(
            &dir,
            &[
                "push",
                "--quiet",
                &self.remote,
                &format!("HEAD:refs/heads/{}", self.branch),
            ],
        )
        .map_err(|e| format!("the push to {} was refused or failed: {e}", self.remote))?;
        Ok(commit)
    }
}

/// Whether the remote's `branch` holds `commit`, as `git ls-remote` tells.
pub fn remote_holds(remote: &str, branch: &str, commit: &str) -> Result<bool, String> {
    let listed = git(
        Path::new("."),
        &["ls-remote", remote, &format!("refs/heads/{branch}")],
    )?;
    Ok(listed.split_whitespace().next() == Some(commit))
}

/// A file of the commit in the local repository of a publish.
pub fn show(repository: &Path, commit: &str, path: &str) -> Result<String, String> {
    git(
        repository,
        &[
            "show",
            &format!("{commit}:{}", path.trim_start_matches('/')),
        ],
    )
}

fn looks_like_git_url(url: &str) -> bool {
    ["file://", "ssh://", "git://", "https://", "http://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
        || url
            .split_once(':')
            .is_some_and(|(user_host, _)| user_host.contains('@'))
}

/// A value of the user's git configuration.
pub fn config(key: &str) -> Option<String> {
    git(Path::new("."), &["config", "--get", key])
        .ok()
        .filter(|v| !v.is_empty())
}

/// Runs git in `dir`; its trimmed stdout, or its stderr as the error.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "git {} failed: {}",
            args.first().unwrap_or(&""),
            stderr.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosted_repo_url_maps_through_the_configured_remote() {
        let remotes = Remotes(BTreeMap::from([(
            "github.com".to_owned(),
            "git://127.0.0.1:9418/{owner}/{repo}.git".to_owned(),
        )]));
        assert_eq!(
            remotes
                .resolve("publish:github", "github.com?repo=pay&owner=my-org")
                .unwrap(),
            "git://127.0.0.1:9418/my-org/pay.git"
        );
        let error = remotes
            .resolve("publish:github", "gitlab.com?repo=pay&owner=o")
            .unwrap_err();
        assert!(
            error.contains("needs a git remote for gitlab.com"),
            "{error}"
        );
        let error = remotes
            .resolve("publish:github", "github.com?repo=pay")
            .unwrap_err();
        assert!(error.contains("has no owner"), "{error}");
    }

    #[test]
    fn publish_git_takes_git_urls_only() {
        let input = |url: &str| json!({"repoUrl": url}).as_object().unwrap().clone();
        let publish = Publish::from_input(
            "publish:git",
            &input("file:///srv/a.git"),
            &Remotes::default(),
        )
        .unwrap();
        assert_eq!(publish.branch, "main");
        assert_eq!(
            publish.outputs("abc")["repoContentsUrl"],
            "file:///srv/a.git#main"
        );
        assert!(
            Publish::from_input(
                "publish:git",
                &input("github.com?repo=a"),
                &Remotes::default()
            )
            .is_err()
        );
        assert!(
            Publish::from_input(
                "publish:git",
                &input("git@host:team/a.git"),
                &Remotes::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_push_never_overwrites_a_branch_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let remote = format!("file://{}", dir.path().join("r.git").display());
        let push = |n: usize| {
            let workspace = dir.path().join(format!("w{n}"));
            std::fs::create_dir_all(&workspace).unwrap();
            std::fs::write(workspace.join("f"), format!("{n}")).unwrap();
            let input = json!({"repoUrl": remote}).as_object().unwrap().clone();
            Publish::from_input("publish:git", &input, &Remotes::default())
                .unwrap()
                .push(&workspace)
        };
        let commit = push(1).unwrap();
        assert!(remote_holds(&remote, "main", &commit).unwrap());
        // A repository created here has the pushed branch as its HEAD.
        let head = git(Path::new("."), &["ls-remote", "--symref", &remote, "HEAD"]).unwrap();
        assert!(head.starts_with("ref: refs/heads/main	HEAD"), "{head}");
        let refused = push(2).unwrap_err();
        assert!(refused.contains("refused"), "{refused}");
        assert!(remote_holds(&remote, "main", &commit).unwrap());
    }
}
