//! Filling a store for `--populate`: users, sessions the server accepts and
//! revocations, written in bulk through the store's own loader
//! (`tessera_store_sql::BulkLoad`: the store's columns and encodings, in
//! multi-row inserts, a transaction per chunk).
//!
//! Sessions are real: their secrets come from the CSPRNG and are stored as
//! a sign-in stores them (their SHA-256), so the bench can present the
//! secrets it kept. Users share one Argon2id hash of the bench's password,
//! computed once with the configured cost: hashing each would take hours.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use tessera_core::revocation::RevocationKind;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::user::{User, UserRecord};
use tessera_core::username::Username;
use tessera_store_sql::BulkLoad;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::progress::progress;

/// Rows written per transaction: many, since a transaction writes each
/// index page it touched once, and random ids touch them all.
const CHUNK: usize = 100_000;
/// One session in this many is a token session (with its refresh token).
const TOKEN_EVERY: usize = 4;
/// One session in this many is expired (idle for longer than allowed),
/// for the sweep to delete.
pub(crate) const EXPIRED_EVERY: usize = 10;
/// How long the revocations loaded stay in force: past the end of any run.
const REVOCATION_LIFETIME: Duration = Duration::hours(6);
/// The user agent of every populated session (a common browser's).
pub(crate) const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// What to put in a store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Sessions in all.
    pub(crate) sessions: usize,
    /// Users they belong to, in turn.
    pub(crate) users: usize,
    /// Whether every `TOKEN_EVERY`-th session is a token session and every
    /// `EXPIRED_EVERY`-th is expired; else all are live cookie sessions.
    pub(crate) mixed: bool,
    /// Revocations appended to the log.
    pub(crate) revocations: usize,
    /// Secrets of live cookie sessions to keep, picked at random.
    pub(crate) sample: usize,
}

/// Lifetimes the populated sessions follow (the server's own settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    /// Cookie sessions' idle and absolute lifetimes.
    pub(crate) cookie: (Duration, Duration),
    /// Token sessions' idle and absolute lifetimes.
    pub(crate) token: (Duration, Duration),
}

/// What was put in a store.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Counts {
    pub(crate) sessions: usize,
    pub(crate) users: usize,
    pub(crate) cookie_sessions: usize,
    pub(crate) token_sessions: usize,
    /// Sessions already expired when written (both kinds).
    pub(crate) expired_sessions: usize,
    pub(crate) revocations: usize,
    /// Time to write it all, and rows (users, sessions, refresh tokens,
    /// revocations) per second.
    pub(crate) seconds: f64,
    pub(crate) rows_per_second: f64,
}

/// A populated store's counts and the secrets the bench kept.
pub(crate) struct Population {
    pub(crate) counts: Counts,
    /// Cookie secrets of live sessions, a random sample in random order.
    pub(crate) cookies: Vec<Secret>,
    /// The cookie secret of an expired session.
    pub(crate) expired_cookie: Option<Secret>,
    /// The refresh token of a live token session.
    pub(crate) refresh: Option<Secret>,
}

/// Fills `store` after `plan`; every user's password hash is `password_hash`.
pub(crate) async fn populate(
    store: &dyn BulkLoad,
    plan: Plan,
    lifetimes: Lifetimes,
    password_hash: &str,
    label: &str,
) -> anyhow::Result<Population> {
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let mut random = Random::seeded()?;
    let users = plan.users.max(1);
    let mut user_ids = Vec::with_capacity(users);
    let mut rows = 0;
    for first in (0..users).step_by(CHUNK) {
        progress(&format!("{label}: users {first} of {users}"));
        let mut chunk = Vec::with_capacity(CHUNK);
        for i in first..(first + CHUNK).min(users) {
            let created = now - Duration::days(30);
            let user = User {
                id: Uuid::new_v4(),
                username: Username::parse(&format!("scale-{i:07}"))
                    .map_err(|e| anyhow::anyhow!("bench username: {e}"))?,
                roles: Vec::new(),
                disabled: false,
                created_at: created,
                updated_at: created,
                rendered: Default::default(),
            };
            user_ids.push(user.id);
            chunk.push(UserRecord {
                user,
                password_hash: password_hash.to_owned(),
            });
        }
        store.load_users(&chunk).await.context("loading users")?;
        rows += chunk.len();
    }
    let mut population = Population {
        counts: Counts {
            sessions: plan.sessions,
            users,
            cookie_sessions: 0,
            token_sessions: 0,
            expired_sessions: 0,
            revocations: plan.revocations,
            seconds: 0.0,
            rows_per_second: 0.0,
        },
        cookies: Vec::with_capacity(plan.sample),
        expired_cookie: None,
        refresh: None,
    };
    // Live cookie sessions seen so far, for the reservoir sample.
    let mut live_cookies = 0usize;
    for first in (0..plan.sessions).step_by(CHUNK) {
        progress(&format!("{label}: sessions {first} of {}", plan.sessions));
        let mut chunk = Vec::with_capacity(CHUNK);
        for i in first..(first + CHUNK).min(plan.sessions) {
            let token = plan.mixed && i % TOKEN_EVERY == TOKEN_EVERY - 1;
            let expired = plan.mixed && i % EXPIRED_EVERY == EXPIRED_EVERY - 1;
            let kind = if token {
                SessionKind::Token
            } else {
                SessionKind::Cookie
            };
            let secret = Secret::generate(if token {
                SecretKind::Refresh
            } else {
                SecretKind::Session
            })?;
            let (idle, absolute) = if token {
                lifetimes.token
            } else {
                lifetimes.cookie
            };
            let times = Times::pick(&mut random, now, idle, absolute, expired);
            let user_id = user_ids
                .get(i % users)
                .copied()
                .context("a session without a user")?;
            chunk.push(Session {
                id: SessionId::generate()?,
                kind,
                user_id,
                secret_hash: secret.hash(),
                created_at: times.created,
                last_seen_at: times.last_seen,
                idle_expires_at: times.idle_expires,
                absolute_expires_at: times.absolute_expires,
                remember_me: false,
                amr: tessera_core::auth_methods::AuthMethods::PASSWORD,
                ip: Some(IpAddr::V4(Ipv4Addr::new(
                    203,
                    0,
                    113,
                    u8::try_from(i % 254 + 1).unwrap_or(1),
                ))),
                user_agent: Some(USER_AGENT.to_owned()),
            });
            let counts = &mut population.counts;
            match (token, expired) {
                (true, _) => counts.token_sessions += 1,
                (false, _) => counts.cookie_sessions += 1,
            }
            if expired {
                counts.expired_sessions += 1;
                if !token && population.expired_cookie.is_none() {
                    population.expired_cookie = Some(secret);
                }
            } else if token {
                if population.refresh.is_none() {
                    population.refresh = Some(secret);
                }
            } else {
                // Reservoir sampling: every live cookie session is equally
                // likely to be kept, wherever it lies in the store.
                live_cookies += 1;
                if population.cookies.len() < plan.sample {
                    population.cookies.push(secret);
                } else if let Some(slot) = population.cookies.get_mut(random.below(live_cookies)) {
                    *slot = secret;
                }
            }
        }
        store
            .load_sessions(&chunk)
            .await
            .context("loading sessions")?;
        rows += chunk.len()
            + chunk
                .iter()
                .filter(|s| s.kind == SessionKind::Token)
                .count();
    }
    for first in (0..plan.revocations).step_by(CHUNK) {
        progress(&format!(
            "{label}: revocations {first} of {}",
            plan.revocations
        ));
        let chunk = (first..(first + CHUNK).min(plan.revocations))
            .map(|_| {
                Ok((
                    RevocationKind::Sid,
                    SessionId::generate()?.as_str().to_owned(),
                    now + REVOCATION_LIFETIME,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store
            .load_revocations(&chunk)
            .await
            .context("loading revocations")?;
        rows += chunk.len();
    }
    random.shuffle(&mut population.cookies);
    let seconds = started.elapsed().as_secs_f64();
    population.counts.seconds = seconds;
    population.counts.rows_per_second = rows as f64 / seconds.max(1e-9);
    Ok(population)
}

/// A populated session's times.
struct Times {
    created: OffsetDateTime,
    last_seen: OffsetDateTime,
    idle_expires: OffsetDateTime,
    absolute_expires: OffsetDateTime,
}

impl Times {
    /// Times of a session with these lifetimes. A live one was last seen a
    /// while ago (more than the touch interval for the default lifetimes,
    /// as a user coming back is: its first request writes `last_seen_at`),
    /// but within the first quarter of its idle lifetime, so that it stays
    /// live through the run; it was created within its absolute lifetime.
    /// An expired one was last seen longer ago than its idle lifetime.
    fn pick(
        random: &mut Random,
        now: OffsetDateTime,
        idle: Duration,
        absolute: Duration,
        expired: bool,
    ) -> Self {
        let (seen_ago, budget) = if expired {
            (idle + idle * random.between(0.01, 1.0), absolute)
        } else {
            let ago = idle.min(absolute) * random.between(0.07, 0.25);
            (ago, absolute - ago)
        };
        let last_seen = now - seen_ago;
        // Created before it was last seen, by less than what is left of its
        // absolute lifetime (half of it at most).
        let created = last_seen - budget * random.between(0.0, 0.5);
        let absolute_expires = created + absolute;
        Self {
            created,
            last_seen,
            idle_expires: (last_seen + idle).min(absolute_expires),
            absolute_expires,
        }
    }
}

/// A small, fast generator (SplitMix64) for spreading times and picking the
/// sample; seeded from the CSPRNG. Nothing secret comes from it.
struct Random(u64);

impl Random {
    fn seeded() -> anyhow::Result<Self> {
        let mut seed = [0u8; 8];
        tessera_core::secret::fill_random(&mut seed)?;
        Ok(Self(u64::from_le_bytes(seed)))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is negligible here).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    /// Uniform in `low..high`.
    fn between(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        low + (high - low) * unit
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn live_sessions_are_live_and_expired_ones_are_not() {
        let mut random = Random::seeded().unwrap();
        let now = OffsetDateTime::now_utc();
        for (idle, absolute) in [
            (Duration::minutes(30), Duration::hours(12)),
            (Duration::days(30), Duration::days(30)),
            (Duration::days(14), Duration::days(7)),
        ] {
            for _ in 0..10_000 {
                let live = Times::pick(&mut random, now, idle, absolute, false);
                assert!(live.created <= live.last_seen && live.last_seen < now);
                assert!(live.idle_expires > now && live.absolute_expires > now);
                assert!(live.absolute_expires - live.created == absolute);
                let expired = Times::pick(&mut random, now, idle, absolute, true);
                assert!(expired.idle_expires.min(expired.absolute_expires) <= now);
            }
        }
    }

    #[test]
    fn picks_stay_in_range() {
        let mut random = Random::seeded().unwrap();
        for n in [1, 2, 7, 1000] {
            for _ in 0..1000 {
                assert!(random.below(n) < n);
            }
        }
        let x = random.between(0.1, 0.9);
        assert!((0.1..0.9).contains(&x));
        let mut items: Vec<u32> = (0..100).collect();
        random.shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
