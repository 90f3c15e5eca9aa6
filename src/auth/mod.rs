//! Identity and authorisation (SPEC §2): who a caller is (JWT or desktop license) and what
//! it may see. Knows nothing about HTTP or Socket.IO; `http::Auth` (the bearer extractor)
//! and `realtime::connect` adapt it.

pub mod gate;
pub mod jwt;
pub mod license;
pub mod manage;
pub mod password;
pub mod throttle;

use serde::{Deserialize, Serialize};

/// Why an identity was refused. The `code` is what clients see (SPEC §3/§4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials were given")]
    Required,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the license key is not valid: {0}")]
    License(String),
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Required => "AUTH_REQUIRED",
            AuthError::Invalid(_) => "TOKEN_INVALID",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::License(_) => "LICENSE_INVALID",
            AuthError::Forbidden(_) => "FORBIDDEN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SuperAdmin,
    CompanyOwner,
    BranchManager,
    Cashier,
    CallCenter,
    Kitchen,
    /// Not a JWT role: a desktop print agent authenticated by license key.
    DesktopApp,
}

impl Role {
    pub const USER_ROLES: [Role; 6] =
        [Role::SuperAdmin, Role::CompanyOwner, Role::BranchManager, Role::Cashier, Role::CallCenter, Role::Kitchen];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::CompanyOwner => "company_owner",
            Role::BranchManager => "branch_manager",
            Role::Cashier => "cashier",
            Role::CallCenter => "call_center",
            Role::Kitchen => "kitchen",
            Role::DesktopApp => "desktop_app",
        }
    }

    /// A role a JWT may carry.
    pub fn parse_user(s: &str) -> Option<Role> {
        Role::USER_ROLES.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles that see their own branch only.
    /// SPEC §2 "configuring": printers, printer discovery, users — managers and above.
    pub fn configures(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::CompanyOwner | Role::BranchManager)
    }

    pub fn branch_scoped(self) -> bool {
        matches!(self, Role::BranchManager | Role::Cashier | Role::Kitchen | Role::DesktopApp)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub role: Role,
    pub company_id: Option<String>,
    pub branch_id: Option<String>,
    pub email: Option<String>,
    /// Desktop apps only: the app's device id and version.
    pub device_id: Option<String>,
    pub app_version: Option<String>,
}

impl Principal {
    pub fn is_desktop(&self) -> bool {
        self.role == Role::DesktopApp
    }

    /// SPEC §2: may this principal see `branch_id`, which belongs to `branch_company`?
    /// (`None`: a branch nobody knows, refused to everyone.)
    pub fn may_access(&self, branch_id: &str, branch_company: Option<&str>) -> bool {
        let Some(company) = branch_company else { return false };
        match self.role {
            Role::SuperAdmin => true,
            r if r.branch_scoped() => self.company_id.as_deref() == Some(company) && self.branch_id.as_deref() == Some(branch_id),
            _ => self.company_id.as_deref() == Some(company),
        }
    }

    /// The company whose branches this principal may list (`None`: every company).
    pub fn company_scope(&self) -> Option<&str> {
        if self.role == Role::SuperAdmin { None } else { self.company_id.as_deref() }
    }
}

/// A user principal for unit tests of the role tables.
#[cfg(test)]
pub(crate) fn test_principal(role: Role, company: Option<&str>, branch: Option<&str>) -> Principal {
    Principal {
        sub: "u".into(),
        role,
        company_id: company.map(Into::into),
        branch_id: branch.map(Into::into),
        email: None,
        device_id: None,
        app_version: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_principal as p;

    #[test]
    fn role_table() {
        let owner = p(Role::CompanyOwner, Some("c1"), None);
        assert!(owner.may_access("b1", Some("c1")));
        assert!(!owner.may_access("b9", Some("c2")));
        let cashier = p(Role::Cashier, Some("c1"), Some("b1"));
        assert!(cashier.may_access("b1", Some("c1")));
        assert!(!cashier.may_access("b2", Some("c1")));
        let admin = p(Role::SuperAdmin, None, None);
        assert!(admin.may_access("b9", Some("c2")));
        assert!(!admin.may_access("nowhere", None), "unknown branches are refused to everyone");
    }
}
