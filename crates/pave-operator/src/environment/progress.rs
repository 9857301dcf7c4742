//! The status being built during one reconcile.

use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use pave_api::DeveloperEnvironment;
use pave_api::conditions::{self, READY, RECOVERABLE, SYNCED, Status, TERMINAL};
use pave_api::environment::{CloudResourceStatus, DeveloperEnvironmentStatus, Phase};
use pave_cloud::{CloudError, Observed, ResourceKind};

use crate::controller::Context;
use crate::error::Error;

/// The status being built during one reconcile, written whenever it says something
/// new (in particular right after each create, so ids are never lost).
pub(super) struct Progress<'a> {
    pub(super) env: &'a DeveloperEnvironment,
    pub(super) ctx: &'a Context,
    pub(super) written: DeveloperEnvironmentStatus,
    pub(super) status: DeveloperEnvironmentStatus,
}

impl<'a> Progress<'a> {
    pub(super) fn new(env: &'a DeveloperEnvironment, ctx: &'a Context) -> Progress<'a> {
        let current = env.status.clone().unwrap_or_default();
        Progress {
            env,
            ctx,
            written: current.clone(),
            status: current,
        }
    }

    pub(super) fn condition(
        &mut self,
        type_: &str,
        status: Status,
        reason: &str,
        message: impl Into<String>,
    ) {
        let condition = conditions::new(
            type_,
            status,
            reason,
            message,
            self.env.meta().generation,
            Timestamp::now(),
        );
        conditions::set(&mut self.status.conditions, condition);
    }

    pub(super) fn clear(&mut self, type_: &str) {
        conditions::remove(&mut self.status.conditions, type_);
    }

    pub(super) fn resource(
        &mut self,
        desired_kind: ResourceKind,
        name: &str,
        observed: Option<&Observed>,
        message: Option<String>,
    ) {
        let entry = CloudResourceStatus {
            kind: desired_kind.as_str().to_owned(),
            name: name.to_owned(),
            id: observed.map(|o| o.id.clone()),
            arn: observed.and_then(|o| o.arn.clone()),
            state: observed.map(|o| o.state.clone()),
            message,
        };
        match self.status.resources.iter_mut().find(|r| r.name == name) {
            Some(existing) => *existing = entry,
            None => self.status.resources.push(entry),
        }
    }

    /// Writes the status if it changed since the last write, then publishes an Event
    /// for each transition the write made ([`transitions`]).
    pub(super) async fn save(&mut self) -> Result<(), Error> {
        self.status.observed_generation = self.env.meta().generation;
        if self.status == self.written {
            return Ok(());
        }
        let api = Api::<DeveloperEnvironment>::namespaced(
            self.ctx.client.clone(),
            &self.env.namespace().unwrap_or_default(),
        );
        self.ctx.apply_status(&api, self.env, &self.status).await?;
        let events = transitions(&self.written, &self.status);
        self.written = self.status.clone();
        for (reason, action, note) in events {
            match action {
                Some(action) => self.ctx.event_on(self.env, reason, &action, note).await,
                None => self.ctx.event(self.env, reason, note).await,
            }
        }
        Ok(())
    }

    /// Records a cloud failure: Terminal waits for a new generation, Recoverable retries.
    ///
    /// Each failure is also a Warning Event (reason: the cloud's error code), so it is
    /// seen in `kubectl describe` and `kubectl pave trace` after the condition moved
    /// on; a Recoverable one repeats with its retries, which the API server folds into
    /// one Event series.
    pub(super) async fn failed(&mut self, error: CloudError) -> Result<Action, Error> {
        self.ctx
            .warning(self.env, error.code(), error.to_string())
            .await;
        self.condition(SYNCED, Status::False, "CloudError", error.to_string());
        self.condition(
            READY,
            Status::False,
            if error.is_terminal() {
                "TerminalError"
            } else {
                "RecoverableError"
            },
            error.to_string(),
        );
        if error.is_terminal() {
            self.condition(TERMINAL, Status::True, error.code(), error.to_string());
            self.clear(RECOVERABLE);
            self.status.phase = Some(Phase::Failed);
        } else {
            self.condition(RECOVERABLE, Status::True, error.code(), error.to_string());
            self.clear(TERMINAL);
        }
        self.save().await?;
        if error.is_terminal() {
            Ok(Action::await_change())
        } else {
            Err(Error::Cloud(error))
        }
    }
}

/// The transitions a user follows in `kubectl describe` or `kubectl pave trace`, from
/// the status last written to the one just written: a new phase (provisioning or an
/// update started, Ready, deletion started) and each cloud resource created, being
/// deleted or deleted. Normal Events, as `(reason, action, note)`, the action naming
/// the resource (see [`Context::event_on`]); failures and refusals are
/// Warning Events where they happen. Derived from what was written, so a reconcile
/// that changes nothing publishes nothing, and one that repeats a step (after a
/// crash) repeats its Event at most once, which the recorder folds into a series.
pub(super) fn transitions(
    before: &DeveloperEnvironmentStatus,
    after: &DeveloperEnvironmentStatus,
) -> Vec<(&'static str, Option<String>, String)> {
    let mut events = Vec::new();
    if after.phase != before.phase {
        let phase = match after.phase {
            Some(Phase::Provisioning) => Some(("Provisioning", "provisioning started")),
            Some(Phase::Updating) => Some(("Updating", "update started")),
            Some(Phase::Deleting) => Some(("Deleting", "deletion started")),
            Some(Phase::Ready) => Some(("Ready", "ready")),
            Some(Phase::Failed) | None => None,
        };
        if let Some((reason, line)) = phase {
            let ready = conditions::find(&after.conditions, READY);
            let note = match ready.map(|c| c.message.as_str()) {
                Some(message) if !message.is_empty() => format!("{line}: {message}"),
                _ => line.to_owned(),
            };
            events.push((reason, None, note));
        }
    }
    for resource in &after.resources {
        let was = before.resources.iter().find(|r| r.name == resource.name);
        let what = format!("{} {}", resource.kind, resource.name);
        let id = resource.id.as_deref().unwrap_or_default();
        let action = |verb: &str| Some(format!("{verb}{}/{}", resource.kind, resource.name));
        if resource.id.is_some() && was.is_none_or(|w| w.id.is_none()) {
            let note = format!("{what} created: {id}");
            events.push(("Created", action("Create"), note));
        }
        let deleting = |r: &CloudResourceStatus| r.message.as_deref() == Some("deleting");
        if deleting(resource) && !was.is_some_and(deleting) {
            let note = format!("{what} ({id}) is being deleted");
            events.push(("DeletingResource", action("Delete"), note));
        }
        let deleted = |r: &CloudResourceStatus| r.state.as_deref() == Some("deleted");
        if resource.id.is_some() && deleted(resource) && !was.is_some_and(deleted) {
            let note = format!("{what} ({id}) deleted");
            events.push(("DeletedResource", action("Delete"), note));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(
        name: &str,
        id: Option<&str>,
        state: &str,
        message: Option<&str>,
    ) -> CloudResourceStatus {
        CloudResourceStatus {
            kind: "Vpc".into(),
            name: name.into(),
            id: id.map(str::to_owned),
            arn: None,
            state: Some(state.into()),
            message: message.map(str::to_owned),
        }
    }

    fn status(
        phase: Option<Phase>,
        resources: Vec<CloudResourceStatus>,
    ) -> DeveloperEnvironmentStatus {
        DeveloperEnvironmentStatus {
            phase,
            resources,
            ..Default::default()
        }
    }

    #[test]
    fn each_transition_is_one_event_and_a_repeat_is_none() {
        let none = status(None, vec![]);
        let provisioning = status(Some(Phase::Provisioning), vec![]);
        let created = status(
            Some(Phase::Provisioning),
            vec![resource("vpc", Some("vpc-1"), "available", None)],
        );
        let ready = status(Some(Phase::Ready), created.resources.clone());
        let deleting = status(
            Some(Phase::Deleting),
            vec![resource(
                "vpc",
                Some("vpc-1"),
                "available",
                Some("deleting"),
            )],
        );
        let deleted = status(
            Some(Phase::Deleting),
            vec![resource("vpc", Some("vpc-1"), "deleted", Some("deleting"))],
        );
        let reasons = |a, b| -> Vec<&str> {
            transitions(a, b)
                .into_iter()
                .map(|(reason, _, _)| reason)
                .collect()
        };
        assert_eq!(reasons(&none, &provisioning), ["Provisioning"]);
        assert_eq!(reasons(&provisioning, &created), ["Created"]);
        let (_, action, note) = &transitions(&provisioning, &created)[0];
        assert_eq!(note, "Vpc vpc created: vpc-1");
        assert_eq!(action.as_deref(), Some("CreateVpc/vpc"));
        assert_eq!(reasons(&created, &ready), ["Ready"]);
        assert_eq!(reasons(&ready, &deleting), ["Deleting", "DeletingResource"]);
        assert_eq!(reasons(&deleting, &deleted), ["DeletedResource"]);
        for same in [&none, &provisioning, &created, &ready, &deleting, &deleted] {
            assert!(transitions(same, same).is_empty());
        }
        // A failure's phase is its Warning Event's business.
        assert!(transitions(&provisioning, &status(Some(Phase::Failed), vec![])).is_empty());
    }
}
