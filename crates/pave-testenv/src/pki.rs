//! The test bed's certificates and keys, generated fresh for every environment, and
//! the admin kubeconfig that carries them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// User name of the admin client certificate.
pub const ADMIN_USER: &str = "pave-admin";

/// PEM-encoded material for one environment.
pub(crate) struct Pki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    /// ECDSA P-256, PKCS#8, for `--service-account-signing-key-file`.
    pub service_account_key: String,
    /// Its public half for `--service-account-key-file`, which in v1.34 rejects a
    /// PKCS#8 private key ("does not contain any valid RSA or ECDSA public keys").
    pub service_account_public_key: String,
    /// The node tier's certificates, when there is a node.
    pub node: Option<NodeCerts>,
}

/// What the node tier adds: the kubelet's client and serving certificates and the API
/// server's client certificate for the kubelet.
pub(crate) struct NodeCerts {
    /// `system:node:NAME` in `system:nodes`, as the Node authorizer requires.
    pub kubelet_client_cert: String,
    pub kubelet_client_key: String,
    /// For the kubelet's port 10250, valid for the node's IP and name.
    pub kubelet_serving_cert: String,
    pub kubelet_serving_key: String,
    /// How the API server authenticates to the kubelet (logs, exec).
    pub apiserver_kubelet_client_cert: String,
    pub apiserver_kubelet_client_key: String,
}

/// The names a pod reaches the API server by (its ClusterIP and the in-cluster DNS
/// names), besides the address it listens on.
const IN_CLUSTER_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

impl Pki {
    /// `apiserver_ips`: where the API server listens and its `kubernetes` ClusterIP.
    /// `node`: the node's name and IP, for a test bed with a node.
    pub fn generate(
        apiserver_ips: &[&str],
        node: Option<(&str, &str)>,
    ) -> Result<Self, rcgen::Error> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "pave-testenv-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let leaf = |sans: Vec<String>, cn: &str, org: Option<&str>, usage| {
            let mut params = CertificateParams::new(sans)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            if let Some(org) = org {
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, org);
            }
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            Ok::<_, rcgen::Error>((cert.pem(), key.serialize_pem()))
        };
        let mut serving_names: Vec<String> = vec!["127.0.0.1".into(), "localhost".into()];
        serving_names.extend(apiserver_ips.iter().map(|ip| ip.to_string()));
        serving_names.extend(IN_CLUSTER_NAMES.map(String::from));
        let (serving_cert, serving_key) = leaf(
            serving_names,
            "kube-apiserver",
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        // CN is the user name and O the group: system:masters bypasses RBAC.
        let (admin_cert, admin_key) = leaf(
            vec![],
            ADMIN_USER,
            Some("system:masters"),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let service_account = KeyPair::generate()?;
        let node = match node {
            None => None,
            Some((name, ip)) => {
                let (kubelet_client_cert, kubelet_client_key) = leaf(
                    vec![],
                    &format!("system:node:{name}"),
                    Some("system:nodes"),
                    ExtendedKeyUsagePurpose::ClientAuth,
                )?;
                let (kubelet_serving_cert, kubelet_serving_key) = leaf(
                    vec![ip.into(), name.into()],
                    name,
                    None,
                    ExtendedKeyUsagePurpose::ServerAuth,
                )?;
                // The kubelet asks the API server (webhook authorization) what this
                // user may do; system:masters may do everything.
                let (apiserver_kubelet_client_cert, apiserver_kubelet_client_key) = leaf(
                    vec![],
                    "kube-apiserver-kubelet-client",
                    Some("system:masters"),
                    ExtendedKeyUsagePurpose::ClientAuth,
                )?;
                Some(NodeCerts {
                    kubelet_client_cert,
                    kubelet_client_key,
                    kubelet_serving_cert,
                    kubelet_serving_key,
                    apiserver_kubelet_client_cert,
                    apiserver_kubelet_client_key,
                })
            }
        };
        Ok(Self {
            node,
            ca_cert: ca.pem(),
            serving_cert,
            serving_key,
            admin_cert,
            admin_key,
            service_account_key: service_account.serialize_pem(),
            service_account_public_key: service_account.public_key_pem(),
        })
    }
}

/// A kubeconfig for the admin user with every certificate embedded, so it keeps
/// working when copied elsewhere.
pub(crate) fn render_kubeconfig(
    server: &str,
    ca_cert: &str,
    client_cert: &str,
    client_key: &str,
) -> String {
    render_kubeconfig_for(ADMIN_USER, server, ca_cert, client_cert, client_key)
}

/// A kubeconfig for `user`'s client certificate.
pub(crate) fn render_kubeconfig_for(
    user: &str,
    server: &str,
    ca_cert: &str,
    client_cert: &str,
    client_key: &str,
) -> String {
    let b64 = |pem: &str| BASE64.encode(pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: pave-testenv
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: pave-testenv
  context:
    cluster: pave-testenv
    user: {user}
current-context: pave-testenv
",
        ca = b64(ca_cert),
        cert = b64(client_cert),
        key = b64(client_key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_pem_material() {
        let pki = Pki::generate(&[], None).unwrap();
        for pem in [&pki.ca_cert, &pki.serving_cert, &pki.admin_cert] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        for pem in [&pki.serving_key, &pki.admin_key, &pki.service_account_key] {
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        }
        assert_ne!(pki.serving_cert, pki.admin_cert);
        assert_ne!(pki.serving_key, pki.service_account_key);
        assert!(
            pki.service_account_public_key
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }

    #[test]
    fn kubeconfig_embeds_everything_and_is_read_by_kube() {
        let pki = Pki::generate(&[], None).unwrap();
        let yaml = render_kubeconfig(
            "https://127.0.0.1:6443",
            &pki.ca_cert,
            &pki.admin_cert,
            &pki.admin_key,
        );
        let config = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("pave-testenv"));
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        let ca = BASE64
            .decode(cluster.certificate_authority_data.as_ref().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(ca).unwrap(), pki.ca_cert);
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(config.auth_infos[0].name, ADMIN_USER);
        assert!(user.client_certificate_data.is_some() && user.client_key_data.is_some());
    }
}
