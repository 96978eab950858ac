//! Certificates for the tests, made with rcgen: a CA, leaves it signs for 127.0.0.1, and their
//! PEM files laid out as a file pair or as the kubelet lays out a Secret volume.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// A CA and the PEM files of a leaf it signed for 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    ca: Issuer<'static, KeyPair>,
}

/// A certificate pair as PEM.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-harden test CA");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            ca: Issuer::new(params, key),
        }
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn leaf(&self, common_name: &str) -> Pair {
        self.leaf_valid(common_name, None)
    }

    /// The same, valid from `validity.0` to `validity.1` (rcgen's default, 1975 to 4096, when
    /// `None`).
    pub fn leaf_valid(
        &self,
        common_name: &str,
        validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) -> Pair {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        self.sign(&params)
    }

    /// A certificate with a fresh key for `params`, signed by the CA.
    fn sign(&self, params: &CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client certificate (for --client-ca-file tests).
    pub fn client(&self, common_name: &str) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }
}

/// Lays out a Secret volume as the kubelet does: `..<stamp>/` holds the files, `..data` links to
/// it, and `tls.crt`/`tls.key` link through `..data` (both files change in one rename).
pub fn secret_volume_swap(dir: &Path, stamp: &str, pair: &Pair) {
    let data = dir.join(format!("..{stamp}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(data.join("tls.key"), &pair.key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{stamp}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        let link = dir.join(file);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

pub fn write_pair(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    (cert, key)
}
