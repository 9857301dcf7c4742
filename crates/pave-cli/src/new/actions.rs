//! The actions pave runs and their required inputs, known before any step runs so
//! the check can name a missing input. (Outputs need no list: the check sees each
//! action's outputs as they will be, see `Run::act`.)

/// What the check knows of an action.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    /// Inputs that must be given; a `|` joins alternatives, one of which must be.
    pub required: &'static [&'static str],
    /// Inputs that mean something only on the hosted service the action is named for,
    /// ignored with a note.
    pub ignored: &'static [&'static str],
}

const GITHUB_ONLY: &[&str] = &[
    "allowedHosts",
    "description",
    "homepageUrl",
    "access",
    "repoVisibility",
    "deleteBranchOnMerge",
    "protectDefaultBranch",
    "protectEnforceAdmins",
    "requireCodeOwnerReviews",
    "requiredStatusCheckContexts",
    "topics",
    "collaborators",
    "token",
    "hasWiki",
    "hasProjects",
    "hasIssues",
    "allowMergeCommit",
    "allowSquashMerge",
    "allowRebaseMerge",
    "requireBranchesToBeUpToDate",
    "requiredConversationResolution",
    "requiredApprovingReviewCount",
];

pub const ACTIONS: &[Spec] = &[
    Spec {
        name: "fetch:template",
        required: &["url"],
        ignored: &[],
    },
    Spec {
        name: "fetch:plain",
        required: &["url"],
        ignored: &[],
    },
    Spec {
        name: "fetch:template:file",
        required: &["url", "targetPath"],
        ignored: &[],
    },
    Spec {
        name: "debug:log",
        required: &[],
        ignored: &[],
    },
    Spec {
        name: "catalog:write",
        required: &["entity"],
        ignored: &[],
    },
    Spec {
        name: "catalog:register",
        required: &["repoContentsUrl|catalogInfoUrl"],
        ignored: &[],
    },
    Spec {
        name: "publish:git",
        required: &["repoUrl"],
        ignored: &[],
    },
    Spec {
        name: "publish:github",
        required: &["repoUrl"],
        ignored: GITHUB_ONLY,
    },
    Spec {
        name: "pave:environment",
        required: &["name|manifestPath"],
        ignored: &[],
    },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// The required inputs `input` lacks, each as the template would name it.
pub fn missing(
    spec: &Spec,
    input: &serde_json::Map<String, serde_json::Value>,
) -> Vec<&'static str> {
    spec.required
        .iter()
        .filter(|alternatives| {
            !alternatives
                .split('|')
                .any(|key| input.get(key).is_some_and(|v| !v.is_null()))
        })
        .copied()
        .collect()
}
