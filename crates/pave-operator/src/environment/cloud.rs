//! What every environment reconcile shares: AWS clients per region, and the one shared
//! inventory listing per region at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use pave_api::DeveloperEnvironment;
use pave_cloud::aws::{Aws, CallObserver};
use pave_cloud::config::OperatorConfig;
use pave_cloud::{CloudError, Observed, ResourceKind};
use tokio::sync::{Mutex, Notify};

/// What every environment reconcile shares.
pub struct Cloud {
    pub(super) config: Arc<OperatorConfig>,
    pub(super) cluster_id: String,
    pub(super) endpoint: Option<String>,
    pub(super) clients: Mutex<HashMap<String, Arc<Aws>>>,
    /// Where every region's clients report how their calls end (the metrics).
    pub(super) calls: Arc<dyn CallObserver>,
    /// Each region's latest inventory (see [`Cloud::inventory`]).
    pub(super) inventories: Mutex<HashMap<String, Arc<Mutex<Option<Listing>>>>>,
    /// The address blocks in use, by region and environment UID (see `cidr_for`).
    pub(super) cidrs: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Where the sweeper looks: regions where this operator acted since it started,
    /// and those its first round found resources of this cluster in (see
    /// `sweeper::discover_regions`); a region leaves once it holds nothing of this
    /// cluster and no environment names it.
    pub(super) regions: std::sync::Mutex<BTreeSet<String>>,
    /// Wakes the sweeper (a Background deletion wants it now).
    pub(super) sweep_now: Notify,
    /// Environments (by UID) the drift check found out of line: their next reconcile
    /// looks at the cloud again instead of trusting status.
    pub(super) drifted: std::sync::Mutex<BTreeSet<String>>,
    pub(super) store: Store<DeserializeGuard<DeveloperEnvironment>>,
    /// pave's Argo CD Applications, as the watch last saw them.
    pub(super) applications: Store<kube::api::DynamicObject>,
    /// What the sweeper remembers between rounds (see `sweeper::Memory`).
    pub(super) sweep: std::sync::Mutex<HashMap<String, super::sweeper::Memory>>,
    /// For the sweeper's authoritative read of which environments exist.
    pub(super) kube: kube::Client,
}

/// A region's cloud resources of this cluster, by kind in creation order.
pub(super) type Inventory = Arc<Vec<(ResourceKind, Observed)>>;

/// One inventory of a region, and when it was asked of the cloud.
pub(super) struct Listing {
    started: Instant,
    result: Result<Inventory, CloudError>,
}

impl Cloud {
    /// The clients for `region`, for acting there: the region is swept from now on,
    /// so nothing this operator creates in it can be left unseen.
    pub(super) async fn client(&self, region: &str) -> Arc<Aws> {
        self.track(region);
        self.connect(region).await
    }

    /// The clients for `region`, for looking only.
    pub(super) async fn connect(&self, region: &str) -> Arc<Aws> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(region) {
            return client.clone();
        }
        let client = Arc::new(Aws::connect(region, self.endpoint.as_deref()).await);
        client.observe_calls(self.calls.clone());
        clients.insert(region.to_owned(), client.clone());
        client
    }

    /// Adds `region` to those the sweeper looks at.
    pub(super) fn track(&self, region: &str) {
        let mut regions = self.regions.lock().expect("not poisoned");
        if !regions.contains(region) {
            regions.insert(region.to_owned());
        }
    }

    /// Every resource of this cluster in `region` (see [`Aws::inventory`]), as listed
    /// by a listing that started no earlier than this call: as fresh as a listing of
    /// one's own, but shared. Listings of a region run one at a time, and everyone who
    /// asked while one was running shares the next; so 200 environments being deleted
    /// at once cost one listing per round, not one each, and moto (which lists in time
    /// proportional to the account's size) stays responsive.
    pub(super) async fn inventory(&self, region: &str) -> Result<Inventory, CloudError> {
        let asked = Instant::now();
        let slot = self
            .inventories
            .lock()
            .await
            .entry(region.to_owned())
            .or_default()
            .clone();
        let mut latest = slot.lock().await;
        if let Some(listing) = latest.as_ref()
            && listing.started >= asked
        {
            return listing.result.clone();
        }
        let started = Instant::now();
        let aws = self.connect(region).await;
        let result = aws.inventory(&self.cluster_id).await.map(Arc::new);
        *latest = Some(Listing {
            started,
            result: result.clone(),
        });
        result
    }

    /// Records that this operator released environment `uid` itself (a Background
    /// deletion), so it is certainly gone once the API server no longer has it: the
    /// sweeper deletes its resources without a grace period. Wakes the sweeper.
    pub(super) fn released(&self, region: &str, uid: &str) {
        self.track(region);
        self.memory(region, |m| m.released.insert(uid.to_owned()));
        self.sweep_now.notify_one();
    }

    /// Records that environment `uid` was released with its resources abandoned on
    /// purpose: this operator's sweeper never deletes them, even where the orphan mark
    /// could not be written.
    pub(super) fn abandoned(&self, region: &str, uid: &str) {
        self.memory(region, |m| m.abandoned.insert(uid.to_owned()));
    }

    /// The sweeper's memory of `region`.
    fn memory<T>(&self, region: &str, f: impl FnOnce(&mut super::sweeper::Memory) -> T) -> T {
        let mut sweep = self.sweep.lock().expect("not poisoned");
        f(sweep.entry(region.to_owned()).or_default())
    }
}
