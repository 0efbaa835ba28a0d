//! User accounts (`users`). Roles are a JSON array in a text column.

use tessera_core::store::StoreResult;
use tessera_core::user::{User, UserRecord};
use tessera_core::username::Username;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable, write_error};
use crate::sql::Sql;
use crate::store::SqlStore;

// sqlx only takes static SQL, so shared column lists are spliced in with concat!.
macro_rules! user_columns {
    () => {
        "id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at"
    };
}
pub(crate) use user_columns;

const INSERT: &str = concat!(
    "INSERT INTO users (",
    user_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
const BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE username_normalized = $1"
);
// Both schemas compare names bytewise (SQLite's BINARY, PostgreSQL's "C"
// collation on the column), so pages follow one order.
const PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE username_normalized > $1 ORDER BY username_normalized LIMIT $2"
);
const SET_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
const SET_DISABLED: &str = "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3";
const SET_ROLES: &str = "UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3";

/// Binds a user's columns, in `user_columns!` order; `roles` is their JSON.
pub(crate) fn bind_user<'q, D: Dialect>(
    q: Sql<'q, D>,
    user: &User,
    password_hash: &str,
    roles: &str,
) -> Sql<'q, D> {
    q.uuid(user.id)
        .text(user.username.display())
        .text(user.username.normalized())
        .text(password_hash)
        .text(roles)
        .flag(user.disabled)
        .time(user.created_at)
        .time(user.updated_at)
}

/// A user row (`user_columns`).
fn read_user<D: Dialect>(row: &D::Row) -> StoreResult<UserRecord> {
    let roles = D::text(row, "roles")?;
    let user = User {
        id: D::uuid(row, "id")?,
        username: Username::from_stored(
            D::text(row, "username")?,
            D::text(row, "username_normalized")?,
        ),
        roles: serde_json::from_str(&roles).map_err(corrupt)?,
        disabled: D::flag(row, "disabled")?,
        created_at: D::time(row, "created_at")?,
        updated_at: D::time(row, "updated_at")?,
        rendered: Default::default(),
    };
    Ok(UserRecord {
        user,
        password_hash: D::text(row, "password_hash")?,
    })
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Users::insert_user`].
    pub async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let roles = serde_json::to_string(&user.roles).map_err(corrupt)?;
        bind_user(Sql::<D>::new(INSERT), user, password_hash, &roles)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// See [`tessera_core::store::Users::user_by_id`].
    pub async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        Sql::<D>::new(BY_ID)
            .uuid(id)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_user::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Users::user_by_username`].
    pub async fn user_by_username(&self, normalized: &str) -> StoreResult<Option<UserRecord>> {
        Sql::<D>::new(BY_USERNAME)
            .text(normalized)
            .fetch_optional(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(read_user::<D>)
            .transpose()
    }

    /// See [`tessera_core::store::Users::list_users`].
    pub async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<User>> {
        let rows = Sql::<D>::new(PAGE)
            .text(after.unwrap_or(""))
            .int(i64::from(limit))
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| read_user::<D>(r).map(|r| r.user))
            .collect()
    }

    /// See [`tessera_core::store::Users::set_password_hash`].
    pub async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = Sql::<D>::new(SET_PASSWORD_HASH)
            .text(hash)
            .time(now)
            .uuid(id)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    /// See [`tessera_core::store::Users::set_disabled`].
    pub async fn set_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = Sql::<D>::new(SET_DISABLED)
            .flag(disabled)
            .time(now)
            .uuid(id)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    /// See [`tessera_core::store::Users::set_roles`].
    pub async fn set_roles(
        &self,
        id: Uuid,
        roles: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let roles = serde_json::to_string(roles).map_err(corrupt)?;
        let changed = Sql::<D>::new(SET_ROLES)
            .text(&roles)
            .time(now)
            .uuid(id)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }
}
