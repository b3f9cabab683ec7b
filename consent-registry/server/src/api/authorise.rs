//! Who may call what: the registry's authorisation table, in one place.
//!
//! Callers are authenticated by mutual TLS: the client certificate chains
//! to the node's configured CA and names one principal in a subject
//! alternative name URI (`lhcie_tls::services`). The table below says what
//! each principal may call; `docs/security.md` ("Registry authorisation")
//! is the same table in prose, and `tests` checks every row.
//!
//! | principal | public API (`ConsentRegistry`) | `RaftInternal` | `ClusterAdmin` |
//! |---|---|---|---|
//! | `urn:lhcie:service:hub` | `Watch`, `Decide`, `DecideBatch`, `Status` | no | no |
//! | `urn:lhcie:service:registry-admin` | every RPC | no | every RPC |
//! | `urn:lhcie:registry-node:<id>`, a member | no | every RPC | no |
//! | anything else | no | no | no |
//!
//! Every change is recorded as made by the caller's certificate identity
//! (`Proposal::by`: an agreement's `drafted_by` and status notes, a
//! directive's `recorded_by`, a grant's `recorded_by`); a header the caller
//! chose (the old `lhcie-actor`) has no authority. A signature's `signer`
//! (a person, asserted by the caller) is recorded with the identity that
//! asserted it.
//!
//! A node with `api.insecure_plaintext` (loopback development only) cannot
//! authenticate anyone: every caller is `urn:lhcie:service:development`
//! with the rights of the service `api.insecure_acts_as` names (`hub` or
//! `registry-admin`), or none; its Raft port accepts every node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lhcie_tls::Principal;

/// The identity of unauthenticated callers of a plaintext (development)
/// node.
pub const DEVELOPMENT_IDENTITY: &str = "urn:lhcie:service:development";

/// The most `Watch` streams one identity may hold open on a node (L3).
pub const MAX_WATCHES_PER_IDENTITY: usize = 8;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `urn:lhcie:service:hub`: follows the registry and decides.
    Hub,
    /// `urn:lhcie:service:registry-admin`: the administration tool.
    Admin,
}

impl Role {
    /// The role of a service name, if it has one.
    pub fn of_service(name: &str) -> Option<Self> {
        match name {
            "hub" => Some(Self::Hub),
            "registry-admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The public API's RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Rpc {
    DraftIsa,
    AmendIsa,
    SignIsa,
    SuspendIsa,
    ReinstateIsa,
    RevokeIsa,
    GetIsa,
    ListIsas,
    SetDirective,
    WithdrawDirective,
    ListDirectives,
    DirectiveHistory,
    ImportDirectives,
    GrantCarer,
    RevokeCarer,
    ListCarerGrants,
    Decide,
    DecideBatch,
    Watch,
    Status,
}

impl Rpc {
    /// Every RPC.
    pub const ALL: [Rpc; 20] = [
        Rpc::DraftIsa,
        Rpc::AmendIsa,
        Rpc::SignIsa,
        Rpc::SuspendIsa,
        Rpc::ReinstateIsa,
        Rpc::RevokeIsa,
        Rpc::GetIsa,
        Rpc::ListIsas,
        Rpc::SetDirective,
        Rpc::WithdrawDirective,
        Rpc::ListDirectives,
        Rpc::DirectiveHistory,
        Rpc::ImportDirectives,
        Rpc::GrantCarer,
        Rpc::RevokeCarer,
        Rpc::ListCarerGrants,
        Rpc::Decide,
        Rpc::DecideBatch,
        Rpc::Watch,
        Rpc::Status,
    ];
}

/// THE TABLE: whether `role` may call `rpc` on the public API.
pub fn permitted(role: Option<Role>, rpc: Rpc) -> bool {
    match role {
        Some(Role::Admin) => true,
        Some(Role::Hub) => matches!(
            rpc,
            Rpc::Watch | Rpc::Decide | Rpc::DecideBatch | Rpc::Status
        ),
        None => false,
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its identity (a certificate's principal URI), recorded as the actor
    /// of every change it makes.
    pub identity: String,
    /// What it may do.
    pub role: Option<Role>,
    /// The principal, when authenticated by a certificate.
    pub principal: Option<Principal>,
}

/// How a node authenticates its callers.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// Mutual TLS: identities from client certificates.
    Tls,
    /// Plaintext on loopback (development): every caller is
    /// [`DEVELOPMENT_IDENTITY`] with these rights.
    Insecure {
        /// `api.insecure_acts_as`.
        acts_as: Option<Role>,
    },
}

impl Authentication {
    /// The caller of `request`.
    pub fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
        match self {
            Self::Insecure { acts_as } => Ok(Caller {
                identity: DEVELOPMENT_IDENTITY.to_owned(),
                role: *acts_as,
                principal: None,
            }),
            Self::Tls => {
                let certificates = request.peer_certs().ok_or_else(|| {
                    tonic::Status::unauthenticated("no client certificate was presented")
                })?;
                let first = certificates.first().ok_or_else(|| {
                    tonic::Status::unauthenticated("no client certificate was presented")
                })?;
                let principal = lhcie_tls::principal_of(first.as_ref())
                    .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
                let role = match &principal {
                    Principal::Service(name) => Role::of_service(name),
                    _ => None,
                };
                Ok(Caller {
                    identity: principal.uri(),
                    role,
                    principal: Some(principal),
                })
            }
        }
    }

    /// The caller of `request`, if the table lets it call `rpc`; otherwise
    /// PERMISSION_DENIED naming the identity and the RPC.
    pub fn authorise<T>(
        &self,
        request: &tonic::Request<T>,
        rpc: Rpc,
    ) -> Result<Caller, tonic::Status> {
        let caller = self.caller(request)?;
        if permitted(caller.role, rpc) {
            Ok(caller)
        } else {
            tracing::warn!(identity = %caller.identity, ?rpc, "registry call refused");
            Err(tonic::Status::permission_denied(format!(
                "{} may not call {rpc:?}",
                caller.identity
            )))
        }
    }

    /// For `ClusterAdmin`: the caller, if it is the administration tool.
    pub fn authorise_cluster_admin<T>(
        &self,
        request: &tonic::Request<T>,
        rpc: &str,
    ) -> Result<Caller, tonic::Status> {
        let caller = self.caller(request)?;
        if caller.role == Some(Role::Admin) {
            Ok(caller)
        } else {
            tracing::warn!(identity = %caller.identity, rpc, "cluster administration refused");
            Err(tonic::Status::permission_denied(format!(
                "{} may not call ClusterAdmin.{rpc} (only urn:lhcie:service:registry-admin may)",
                caller.identity
            )))
        }
    }

    /// For `RaftInternal`: accepted only from a registry node that
    /// `is_member` says belongs to the cluster. A plaintext node accepts
    /// everyone (loopback development).
    pub fn authorise_raft<T>(
        &self,
        request: &tonic::Request<T>,
        rpc: &str,
        is_member: impl Fn(u64) -> bool,
    ) -> Result<(), tonic::Status> {
        if matches!(self, Self::Insecure { .. }) {
            return Ok(());
        }
        let caller = self.caller(request)?;
        match caller.principal {
            Some(Principal::RegistryNode(id)) if is_member(id) => Ok(()),
            _ => {
                tracing::warn!(identity = %caller.identity, rpc, "Raft message refused: not a member");
                Err(tonic::Status::permission_denied(format!(
                    "{} may not call RaftInternal.{rpc}: not a member of this cluster",
                    caller.identity
                )))
            }
        }
    }
}

/// Open `Watch` streams per identity.
#[derive(Debug, Clone, Default)]
pub struct WatchLimits {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open watch; dropping it frees its place.
#[derive(Debug)]
pub struct WatchPlace {
    open: Arc<Mutex<HashMap<String, usize>>>,
    identity: String,
}

impl WatchLimits {
    /// A place for one more watch of `identity`, or RESOURCE_EXHAUSTED.
    pub fn take(&self, identity: &str) -> Result<WatchPlace, tonic::Status> {
        let mut open = self.open.lock().expect("watch limits");
        let count = open.entry(identity.to_owned()).or_default();
        if *count >= MAX_WATCHES_PER_IDENTITY {
            return Err(tonic::Status::resource_exhausted(format!(
                "{identity} has {MAX_WATCHES_PER_IDENTITY} watch streams open on this node already"
            )));
        }
        *count += 1;
        Ok(WatchPlace {
            open: self.open.clone(),
            identity: identity.to_owned(),
        })
    }
}

impl Drop for WatchPlace {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.identity)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.identity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        for rpc in Rpc::ALL {
            assert!(permitted(Some(Role::Admin), rpc), "{rpc:?}");
            assert!(!permitted(None, rpc), "{rpc:?}");
            let hub = matches!(
                rpc,
                Rpc::Watch | Rpc::Decide | Rpc::DecideBatch | Rpc::Status
            );
            assert_eq!(permitted(Some(Role::Hub), rpc), hub, "{rpc:?}");
        }
        // Reads of patients' choices and every write are refused to the hub.
        for rpc in [
            Rpc::ListDirectives,
            Rpc::DirectiveHistory,
            Rpc::ListCarerGrants,
            Rpc::SignIsa,
            Rpc::SetDirective,
            Rpc::WithdrawDirective,
        ] {
            assert!(!permitted(Some(Role::Hub), rpc));
        }
        assert_eq!(Role::of_service("hub"), Some(Role::Hub));
        assert_eq!(Role::of_service("registry-admin"), Some(Role::Admin));
        assert_eq!(Role::of_service("console"), None);
    }

    #[test]
    fn a_development_node_grants_only_what_it_is_told() {
        let request = tonic::Request::new(());
        let none = Authentication::Insecure { acts_as: None };
        let status = none.authorise(&request, Rpc::Watch).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "urn:lhcie:service:development may not call Watch"
        );
        let hub = Authentication::Insecure {
            acts_as: Some(Role::Hub),
        };
        assert!(hub.authorise(&request, Rpc::Watch).is_ok());
        assert!(hub.authorise(&request, Rpc::SignIsa).is_err());
        assert!(hub.authorise_cluster_admin(&request, "AddNode").is_err());
        let admin = Authentication::Insecure {
            acts_as: Some(Role::Admin),
        };
        let caller = admin.authorise(&request, Rpc::SignIsa).unwrap();
        assert_eq!(caller.identity, DEVELOPMENT_IDENTITY);
    }

    #[test]
    fn without_a_certificate_nothing_is_allowed() {
        let request = tonic::Request::new(());
        let status = Authentication::Tls
            .authorise(&request, Rpc::Status)
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(
            Authentication::Tls
                .authorise_raft(&request, "AppendEntries", |_| true)
                .is_err()
        );
    }

    #[test]
    fn watches_are_limited_per_identity() {
        let limits = WatchLimits::default();
        let places: Vec<_> = (0..MAX_WATCHES_PER_IDENTITY)
            .map(|_| limits.take("urn:lhcie:service:hub").unwrap())
            .collect();
        let refused = limits.take("urn:lhcie:service:hub").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(limits.take("urn:lhcie:service:registry-admin").is_ok());
        drop(places);
        assert!(limits.take("urn:lhcie:service:hub").is_ok());
    }
}
