//! Who is calling: a verified token becomes an [`AuthUser`] (the account created on its first
//! request, suspended accounts refused). The axum extractors that read the token from a
//! request live in `http::extract`; this module knows nothing of requests.

use futures::future::BoxFuture;

use crate::{
    db::Client,
    error::{AppError, AppResult},
    ratelimit,
    state::AppState,
    tenant::{TenantId, VerifiedTenant},
    tokens::Claims,
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

/// A verified token that has spent one from its account's request bucket; its account is not
/// read yet. [`Caller::authenticate`] reads it; [`Caller::read`] reads it beside a read-only
/// handler's own statements.
pub struct Caller {
    claims: Claims,
}

/// Verifies `token` and spends one from the account's request bucket.
pub async fn caller(state: &AppState, token: &str) -> Result<Caller, AppError> {
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
    Ok(Caller { claims })
}

/// Verifies `token`, spends one from the account's request bucket, creates the user on its
/// first request (with the signup bonus) and refuses suspended accounts with 403.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, AppError> {
    caller(state, token).await?.authenticate(state).await
}

/// A read-only handler's statements, for the tenant they read.
pub type Read<I, T> = for<'c> fn(&'c Client, TenantId, &'c I) -> BoxFuture<'c, AppResult<T>>;

impl Caller {
    fn identity(&self) -> Identity<'_> {
        Identity {
            subject: &self.claims.sub,
            email: self.claims.email.as_deref(),
            name: self.claims.name.as_deref(),
            email_verified: self.claims.email_verified,
        }
    }

    /// The caller's account, created on its first request (with the signup bonus); suspended
    /// accounts are refused with 403.
    pub async fn authenticate(self, state: &AppState) -> Result<AuthUser, AppError> {
        // The user lookup rides with the connection's liveness check; provisioning twice is
        // harmless (the insert is once per subject).
        let (db, mut user) = state
            .db()
            .get_with_first(&self.identity(), |db, identity| {
                Box::pin(users::provision(db, identity))
            })
            .await?;
        users::keep_email_current(&db, &mut user, &self.identity()).await?;
        state.db().keep_for_request(db);
        self.admit(state, user)
    }

    /// `read` for the caller's account, and the account. Once this process has seen the
    /// account, `read` is sent for it beside the account's lookup, one round trip for both
    /// instead of one each, and its answer is only used once the lookup has confirmed that
    /// the token's subject is still that account, and active. Otherwise `read` runs after the
    /// lookup (again, when the subject now names another account).
    pub async fn read<I: Sync, T: Send>(
        self,
        state: &AppState,
        input: &I,
        read: Read<I, T>,
    ) -> Result<(AuthUser, T), AppError> {
        let Some(known) = state.known_accounts().get(&self.claims.sub) else {
            return read_as(self.authenticate(state).await?, state, input, read).await;
        };
        let speculation = Speculation {
            subject: &self.claims.sub,
            known,
            input,
            read,
        };
        let (db, (user, answer)) = state
            .db()
            .get_with_first(&speculation, speculate::<I, T>)
            .await?;
        let user = match user {
            Some(mut user) => {
                users::keep_email_current(&db, &mut user, &self.identity()).await?;
                Some(user)
            }
            None => None,
        };
        state.db().keep_for_request(db);
        let Some(user) = user else {
            // Deleted since: created again, as on a first request (and known as the new one).
            return read_as(self.authenticate(state).await?, state, input, read).await;
        };
        let auth = self.admit(state, user)?;
        if auth.tenant != known {
            return read_as(auth, state, input, read).await;
        }
        Ok((auth, answer?))
    }

    /// The caller as `user`, unless suspended; remembered as that account.
    fn admit(self, state: &AppState, user: User) -> Result<AuthUser, AppError> {
        let claims = self.claims;
        let listed_admin = claims.email_verified
            && claims.email.as_deref().is_some_and(|email| {
                state
                    .config()
                    .admin_emails
                    .iter()
                    .any(|admin| admin.eq_ignore_ascii_case(email))
            });
        // The platform's owners (ADMIN_EMAILS) cannot be locked out by another admin.
        if user.status == UserStatus::Suspended && !listed_admin {
            // Nothing more is read for it beside its lookup.
            state.known_accounts().forget(&claims.sub);
            return Err(users::suspended_refusal());
        }
        state.known_accounts().remember(&claims.sub, user.tenant());
        Ok(AuthUser {
            tenant: user.tenant(),
            is_admin: user.role == Role::Admin || listed_admin,
            email_verified: claims.email_verified,
            user,
        })
    }
}

/// `read` for `auth`'s account, after its lookup, on the connection the request keeps.
async fn read_as<I: Sync, T: Send>(
    auth: AuthUser,
    state: &AppState,
    input: &I,
    read: Read<I, T>,
) -> Result<(AuthUser, T), AppError> {
    let db = state.db().get().await?;
    let answer = read(&db, auth.tenant, input).await?;
    Ok((auth, answer))
}

/// A read sent for the account a subject was last seen as, beside that subject's lookup.
struct Speculation<'a, I: ?Sized, T> {
    subject: &'a str,
    known: TenantId,
    input: &'a I,
    read: Read<I, T>,
}

/// The subject's account and `read`'s answer for the account it was, sent together: one round
/// trip once their statements are prepared on the connection (in whichever order they run,
/// both only read). The answer is kept whole, an error too: which one the caller gets depends
/// on the lookup.
fn speculate<'c, I: Sync, T: Send>(
    db: &'c mut Client,
    speculation: &'c Speculation<'_, I, T>,
) -> BoxFuture<'c, AppResult<(Option<User>, AppResult<T>)>> {
    Box::pin(async move {
        let db = &*db;
        let (user, answer) = futures::future::join(
            users::by_subject(db, speculation.subject),
            (speculation.read)(db, speculation.known, speculation.input),
        )
        .await;
        Ok((user?, answer))
    })
}
