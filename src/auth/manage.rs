//! Who may manage which users (SPEC §2), and what a user's email and password must look
//! like. Pure rules shared by the REST API and the CLI; no I/O.
//!
//! A `branch_manager` manages users of its own branch with roles below its own; a
//! `company_owner` those of its company below its own; only a `super_admin` creates or
//! manages `super_admin`s and `company_owner`s. Staff roles manage nobody.

use super::{Principal, Role};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (login reads at most this many bytes).
pub const MAX_PASSWORD: usize = 1024;

/// Why managing a user was refused: `NotFound` outside the caller's scope (nothing of
/// another company or branch leaks), `Forbidden` inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such user here")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
}

fn rank(r: Role) -> u8 {
    match r {
        Role::SuperAdmin => 4,
        Role::CompanyOwner => 3,
        Role::BranchManager => 2,
        _ => 1,
    }
}

/// Whether a user of `company`/`branch` is within what `p` may see of users at all.
pub fn in_scope(p: &Principal, company: Option<&str>, branch: Option<&str>) -> bool {
    match p.role {
        Role::SuperAdmin => true,
        Role::CompanyOwner => company.is_some() && company == p.company_id.as_deref(),
        Role::BranchManager => {
            company.is_some() && company == p.company_id.as_deref() && branch.is_some() && branch == p.branch_id.as_deref()
        }
        _ => false,
    }
}

/// May `p` manage (create, change, disable, reset) a user with `role` in `company`/`branch`?
pub fn may_manage(p: &Principal, role: Role, company: Option<&str>, branch: Option<&str>) -> Result<(), Refusal> {
    if !p.role.configures() {
        return Err(Refusal::Forbidden(format!("a {} may not manage users; ask a branch manager", p.role.as_str())));
    }
    if p.role != Role::SuperAdmin && matches!(role, Role::SuperAdmin | Role::CompanyOwner) {
        return Err(Refusal::Forbidden(format!("only a super_admin creates or manages {}s", role.as_str())));
    }
    if !in_scope(p, company, branch) {
        return Err(Refusal::NotFound);
    }
    if p.role == Role::SuperAdmin {
        return Ok(());
    }
    if rank(role) >= rank(p.role) {
        return Err(Refusal::Forbidden(format!("a {} manages only roles below its own, not {}", p.role.as_str(), role.as_str())));
    }
    Ok(())
}

/// An email address: one `@` with text on both sides, no spaces or control characters.
pub fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 320
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok { Ok(()) } else { Err(format!("email {:?} is not an email address", crate::validate::loggable(email))) }
}

/// A password good enough to set: 8 to 1024 characters, not all one character, not the email.
pub fn check_password(password: &str, email: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("the password must be at least {MIN_PASSWORD} characters"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!("the password must be at most {MAX_PASSWORD} bytes"));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("the password must not be one character repeated".into());
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("the password must not be the email address".into());
    }
    Ok(())
}

/// The roles, for help texts and errors.
pub fn role_names() -> String {
    Role::USER_ROLES.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_principal as p;

    #[test]
    fn the_management_table() {
        let manager = p(Role::BranchManager, Some("c1"), Some("b1"));
        assert!(may_manage(&manager, Role::Cashier, Some("c1"), Some("b1")).is_ok());
        assert_eq!(may_manage(&manager, Role::Cashier, Some("c1"), Some("b2")), Err(Refusal::NotFound));
        assert!(matches!(may_manage(&manager, Role::BranchManager, Some("c1"), Some("b1")), Err(Refusal::Forbidden(_))));
        let owner = p(Role::CompanyOwner, Some("c1"), None);
        assert!(may_manage(&owner, Role::BranchManager, Some("c1"), Some("b2")).is_ok());
        assert!(matches!(may_manage(&owner, Role::CompanyOwner, Some("c1"), None), Err(Refusal::Forbidden(_))));
        assert_eq!(may_manage(&owner, Role::Cashier, Some("c2"), Some("b9")), Err(Refusal::NotFound));
        let admin = p(Role::SuperAdmin, None, None);
        assert!(may_manage(&admin, Role::SuperAdmin, None, None).is_ok());
        let cashier = p(Role::Cashier, Some("c1"), Some("b1"));
        assert!(matches!(may_manage(&cashier, Role::Kitchen, Some("c1"), Some("b1")), Err(Refusal::Forbidden(_))));
    }

    #[test]
    fn emails_and_passwords() {
        assert!(check_email("a@b.test").is_ok());
        for bad in ["", "ab", "a@", "@b", "a b@c", "a@b@c"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_password("correct horse", "a@b").is_ok());
        assert!(check_password("short", "a@b").is_err());
        assert!(check_password("aaaaaaaaaa", "a@b").is_err());
        assert!(check_password("me@x.test", "me@x.test").is_err());
    }
}
