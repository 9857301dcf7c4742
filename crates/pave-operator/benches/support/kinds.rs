//! What a benchmark of every catalog kind adds to `support`: creating objects of any
//! kind, and the status writes of all the catalog controllers together.
//!
//! `support/mod.rs` does not declare this module; a benchmark that wants it says
//! `mod support;` and `#[path = "support/kinds.rs"] mod kinds;`.
#![allow(dead_code)] // each benchmark uses a different part

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::PostParams;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::support::{CONCURRENCY, Operator};

/// The catalog controllers' names (their field managers and metrics labels), one per
/// kind: Component, Group, User, System, Domain, API, Resource.
pub const CATALOG_CONTROLLERS: [&str; 7] = [
    "pave-catalog",
    "pave-catalog-groups",
    "pave-catalog-users",
    "pave-catalog-systems",
    "pave-catalog-domains",
    "pave-catalog-apis",
    "pave-catalog-resources",
];

/// Creates `objects` of any kind, `CONCURRENCY` at a time; returns how long it took.
/// (`support::create_all` for any kind, not only Components.)
pub async fn create_all_of<K>(api: &Api<K>, objects: Vec<K>) -> Duration
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    let started = Instant::now();
    stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &object)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| panic!("create the {}s: {e}", K::kind(&())));
    started.elapsed()
}

/// Status writes of every catalog controller, summed (`Operator::status_writes` counts
/// the Component controller's alone); NaN while the operator does not answer.
pub fn catalog_status_writes(operator: &Operator) -> f64 {
    CATALOG_CONTROLLERS
        .iter()
        .map(|controller| operator.writes_of(controller))
        .sum()
}
