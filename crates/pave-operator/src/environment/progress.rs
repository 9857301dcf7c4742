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

    /// Writes the status if it changed since the last write.
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
        self.written = self.status.clone();
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
