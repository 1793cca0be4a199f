//! Who is calling: a verified token becomes an [`AuthUser`] (the account created on its first
//! request, suspended accounts refused). The axum extractors that read the token from a
//! request live in `http::extract`; this module knows nothing of requests.

use crate::{
    error::AppError,
    ratelimit,
    state::AppState,
    tenant::{TenantId, VerifiedTenant},
    users::{self, Identity, Role, User, UserStatus},
};

/// An authenticated, active user.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub tenant: TenantId,
    pub user: User,
    pub is_admin: bool,
    /// The identity provider says the email is the user's.
    pub email_verified: bool,
}

impl AuthUser {
    pub fn verified_tenant(&self) -> Result<VerifiedTenant, AppError> {
        if self.email_verified {
            Ok(VerifiedTenant::from_trusted(self.tenant))
        } else {
            Err(AppError::forbidden(
                "email_not_verified",
                "verify your email address before placing calls",
            ))
        }
    }

    /// This user as an admin; anyone else gets 403.
    pub fn into_admin(self) -> Result<AdminUser, AppError> {
        if self.is_admin {
            Ok(AdminUser(self))
        } else {
            Err(AppError::forbidden(
                "admin_required",
                "this route requires the admin role",
            ))
        }
    }
}

/// An [`AuthUser`] with the admin role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

/// Verifies `token`, spends one from the account's request bucket, creates the user on its
/// first request (with the signup bonus) and refuses suspended accounts with 403.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, AppError> {
    let claims = state.verifier().verify(token).await?;
    if let Err(wait) = state
        .tenant_limiter()
        .take(&claims.sub, std::time::Instant::now())
    {
        return Err(ratelimit::too_many(
            wait,
            "too many requests for this account; slow down",
        ));
    }
    let identity = Identity {
        subject: &claims.sub,
        email: claims.email.as_deref(),
        name: claims.name.as_deref(),
    };
    // The user lookup rides with the connection's liveness check; provisioning twice is
    // harmless (the insert is once per subject).
    let (db, user) = state
        .db()
        .get_with_first(&identity, |db, identity| {
            Box::pin(users::provision(db, identity))
        })
        .await?;
    state.db().keep_for_request(db);
    if user.status == UserStatus::Suspended {
        return Err(AppError::forbidden(
            "account_suspended",
            "this account is suspended; contact support",
        ));
    }
    let listed_admin = claims.email_verified
        && claims.email.as_deref().is_some_and(|email| {
            state
                .config()
                .admin_emails
                .iter()
                .any(|admin| admin.eq_ignore_ascii_case(email))
        });
    Ok(AuthUser {
        tenant: user.tenant(),
        is_admin: user.role == Role::Admin || listed_admin,
        email_verified: claims.email_verified,
        user,
    })
}
