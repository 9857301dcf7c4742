//! Tests against the real test bed (etcd, kube-apiserver, kube-controller-manager and
//! kubectl built from upstream). One control plane is shared by this binary; every test
//! isolates itself in a fresh namespace.

mod admission;
mod examples;
mod garbage_collection;
