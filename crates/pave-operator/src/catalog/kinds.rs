//! The catalog kinds as the controllers see them: what each one's spec tells the
//! catalog, and, for the kinds around Components (Group, User, System, Domain, API,
//! Resource), one generic controller that writes their status.

use std::fmt::Debug;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use pave_api::component::ComponentStatus;
use pave_api::entity::EntityStatus;
use pave_api::{ApiEntity, Component, Domain, Group, GroupStatus, Resource as CatalogResource};
use pave_api::{CatalogEntity, System, User};
use pave_catalog::{EntityRef, EntityView, Kind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ready::{entity_status, references};
use super::trim::{CatalogStatus, differs, trim_event};
use super::{CONCURRENCY, CatalogHandle};
use crate::controller::{self, Context, Shared, report_watch};
use crate::error::Error;

pub const GROUPS: &str = "pave-catalog-groups";
pub const USERS: &str = "pave-catalog-users";
pub const SYSTEMS: &str = "pave-catalog-systems";
pub const DOMAINS: &str = "pave-catalog-domains";
pub const APIS: &str = "pave-catalog-apis";
pub const RESOURCES: &str = "pave-catalog-resources";

/// Every catalog kind, each with its own controller.
pub const KINDS: [Kind; 7] = [
    Kind::Component,
    Kind::Group,
    Kind::User,
    Kind::System,
    Kind::Domain,
    Kind::Api,
    Kind::Resource,
];

/// A catalog kind as a controller runs it: its kind and reference fields
/// (`CatalogEntity`), its controller, its watch and its status.
pub trait CatalogKind:
    CatalogEntity
    + Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Field manager, event reporter and metrics label.
    const CONTROLLER: &'static str;
    /// `plural.group`, as readiness names the watch.
    const RESOURCE: &'static str;
    type Status: CatalogStatus + Serialize + Debug + Send + Sync;
    fn status(&self) -> Option<&Self::Status>;
    fn status_mut(&mut self) -> Option<&mut Self::Status>;
}

macro_rules! catalog_kind {
    ($($kind:ty: $status:ty, $resource:literal, $controller:expr;)*) => {$(
        impl CatalogKind for $kind {
            const RESOURCE: &'static str = $resource;
            const CONTROLLER: &'static str = $controller;
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> Option<&mut $status> {
                self.status.as_mut()
            }
        }
    )*};
}
catalog_kind! {
    Component: ComponentStatus, "components.platform.pave.dev", super::component::NAME;
    Group: GroupStatus, "groups.platform.pave.dev", GROUPS;
    User: EntityStatus, "users.platform.pave.dev", USERS;
    System: EntityStatus, "systems.platform.pave.dev", SYSTEMS;
    Domain: EntityStatus, "domains.platform.pave.dev", DOMAINS;
    ApiEntity: EntityStatus, "apis.platform.pave.dev", APIS;
    CatalogResource: EntityStatus, "resources.platform.pave.dev", RESOURCES;
}

/// A kind whose status is the catalog's alone (every kind but Component, whose
/// status also carries impact and scores).
pub trait EntityKind: CatalogKind {
    /// The status the catalog wants, from the common part `entity` and the view.
    fn wanted(entity: EntityStatus, view: &EntityView) -> Self::Status;
    /// The common part of a status.
    fn entity(status: &Self::Status) -> &EntityStatus;
}

macro_rules! entity_kind {
    ($($kind:ty),*) => {$(
        impl EntityKind for $kind {
            fn wanted(entity: EntityStatus, _view: &EntityView) -> EntityStatus {
                entity
            }
            fn entity(status: &EntityStatus) -> &EntityStatus {
                status
            }
        }
    )*};
}
entity_kind!(User, System, Domain, ApiEntity, CatalogResource);

impl EntityKind for Group {
    fn wanted(entity: EntityStatus, view: &EntityView) -> GroupStatus {
        let members = references(&view.members);
        GroupStatus {
            entity,
            member_count: Some(members.len() as i64),
            members,
        }
    }
    fn entity(status: &GroupStatus) -> &EntityStatus {
        &status.entity
    }
}

/// The controller of catalog kind `K`, unstarted: its watch feeds the catalog in the
/// stream itself, before the controller sees the object, and the catalog's triggers
/// for `K` reach it.
pub fn controller<K: CatalogKind>(
    shared: &Shared,
    catalog: &CatalogHandle,
    triggered: mpsc::UnboundedReceiver<EntityRef>,
) -> Controller<DeserializeGuard<K>> {
    let (reader, writer) = reflector::store::<DeserializeGuard<K>>();
    let objects = {
        let (catalog, metrics) = (catalog.clone(), shared.metrics.clone());
        let events = watcher(
            Api::<DeserializeGuard<K>>::all(shared.client.clone()),
            controller::watch_config(),
        )
        .default_backoff();
        // The catalog is fed the whole object (with the digest of its status lists),
        // then the store gets it trimmed (see `trim`).
        report_watch(events, shared.readiness.clone(), K::RESOURCE)
            .map_ok(move |mut event| {
                catalog.feed(&metrics, |state| state.on_entity::<K>(&event));
                trim_event(&mut event);
                event
            })
            .reflect(writer)
            .touched_objects()
    };
    let triggered = triggered.map(|e| ObjectRef::new(&e.name).within(&e.namespace));
    let queue = shared.metrics.queue(K::CONTROLLER);
    Controller::for_stream(queue.track(objects), reader)
        .reconcile_on(queue.track_refs(triggered))
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY))
}

/// Runs the controller of one kind around Components: its watch feeds the catalog,
/// and it writes the status of each object the catalog names.
pub async fn run<K: EntityKind>(
    shared: Shared,
    catalog: CatalogHandle,
    triggered: mpsc::UnboundedReceiver<EntityRef>,
) {
    let controller = controller::<K>(&shared, &catalog, triggered);
    let reconcile = move |obj: Arc<DeserializeGuard<K>>, ctx: Arc<Context>| {
        let catalog = catalog.clone();
        async move { reconcile(obj, ctx, catalog).await }
    };
    controller::run_controller(shared, K::CONTROLLER, controller, reconcile).await;
}

async fn reconcile<K: EntityKind>(
    obj: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
    catalog: CatalogHandle,
) -> Result<Action, Error> {
    let object = ctx.accept(&obj).await?;
    // Not yet current: the catalog triggers this object again once it is.
    let Some((view, current_lists)) = catalog.lock().view_for(object) else {
        return Ok(Action::await_change());
    };
    let current = object.status().cloned().unwrap_or_default();
    let generation = object.meta().generation;
    if let Some(status) = desired::<K>(&current, current_lists, generation, &view, Timestamp::now())
    {
        let api = Api::<K>::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
        ctx.apply_status(&api, object, status).await?;
    }
    Ok(Action::await_change())
}

/// The status the catalog wants for an object of kind `K`, or `None` when `current`
/// (whose lists' digest is `current_lists`) already says it.
fn desired<K: EntityKind>(
    current: &K::Status,
    current_lists: u64,
    generation: Option<i64>,
    view: &EntityView,
    now: Timestamp,
) -> Option<K::Status> {
    let entity = entity_status(K::entity(current), generation, view, now);
    let wanted = K::wanted(entity, view);
    differs(&wanted, current, current_lists).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use super::super::ready::relations;
    use super::*;
    use pave_api::conditions::{self, READY};
    use pave_catalog::{Catalog, Refs};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    /// The digest of an object without a status.
    fn none() -> u64 {
        EntityStatus::default().lists_digest()
    }

    /// `status` as the store keeps it.
    fn trimmed<S: CatalogStatus>(status: &S) -> S {
        let mut status = status.clone();
        status.clear_lists();
        status
    }

    #[test]
    fn a_group_lists_its_members_and_an_unchanged_answer_is_no_write() {
        let mut catalog = Catalog::new();
        catalog.upsert(EntityRef::new(Kind::Group, "org", "team"), &Refs::default());
        catalog.upsert(
            EntityRef::new(Kind::User, "org", "jane"),
            &Refs {
                member_of: vec!["team".into()],
                ..Default::default()
            },
        );
        let view = catalog
            .view_of(&EntityRef::new(Kind::Group, "org", "team"))
            .unwrap();
        let status = desired::<Group>(
            &GroupStatus::default(),
            GroupStatus::default().lists_digest(),
            Some(1),
            &view,
            at(10),
        )
        .unwrap();
        assert_eq!(status.members, ["user:org/jane"]);
        assert_eq!(status.member_count, Some(1));
        let ready = conditions::find(&status.entity.conditions, READY).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(
            desired::<Group>(
                &trimmed(&status),
                status.lists_digest(),
                Some(1),
                &view,
                at(20)
            ),
            None,
            "the same answer later is no write"
        );
    }

    #[test]
    fn an_owner_missing_from_a_known_org_is_not_ready() {
        let mut catalog = Catalog::new();
        catalog.upsert(
            EntityRef::new(Kind::Group, "org", "platform"),
            &Refs::default(),
        );
        let system = EntityRef::new(Kind::System, "org", "podcast");
        catalog.upsert(
            system.clone(),
            &Refs {
                owner: "platfrom".into(),
                ..Default::default()
            },
        );
        let view = catalog.view_of(&system).unwrap();
        let status =
            desired::<System>(&EntityStatus::default(), none(), Some(3), &view, at(0)).unwrap();
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "UnresolvedReference")
        );
        assert_eq!(
            ready.message,
            "unresolved references: spec.owner group:org/platfrom: no Group platfrom in namespace org"
        );
        assert_eq!(status.unresolved_refs, ["group:org/platfrom"]);
        assert_eq!(relations(&view)[0].type_, "ownedBy");
    }
}
