//! User accounts: `login` checks them; `changePwd`, `createUser`, `resetPwd` and `deleteUser`
//! change them. A node starts with DolphinDB's default account, `admin` / `123456`.
//!
//! Passwords are never stored: each account keeps a random 16-byte salt and
//! SHA-256 iterated [`HASH_ROUNDS`] times over salt and password. The account file
//! (`<dfsMetaDir>/users`: a `#porpoise-accounts <format>` line, then one
//! `name salt-hex hash-hex admin-flag` line per account) is replaced through `rt::disk`'s
//! crash-safe replace (tmp, sync, rename, sync the directory), so a crash leaves the old or the
//! new set of accounts, never a mix. A file of another format is refused, never guessed at.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::eval::EvalError;

/// Hash iterations: a few milliseconds per login, enough to slow down guessing a stolen file.
pub const HASH_ROUNDS: u32 = 4096;
/// Most accounts a node keeps.
pub const ACCOUNTS_MAX: usize = 4096;
/// The account file format this build writes and reads. Format 0 is the same lines without
/// the header line (builds before format 1); it is read, and rewritten as 1 on the next change.
pub const ACCOUNTS_FORMAT: u32 = 1;
const ACCOUNTS_HEADER: &str = "#porpoise-accounts";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    salt: [u8; 16],
    hash: [u8; 32],
    admin: bool,
}

fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut h: [u8; 32] = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    for _ in 1..HASH_ROUNDS {
        h = Sha256::new()
            .chain_update(salt)
            .chain_update(h)
            .finalize()
            .into();
    }
    h
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Account {
    fn new(password: &str, admin: bool) -> Account {
        let mut salt = [0u8; 16];
        rt::rand::Rng::with_seed(rt::rand::seed()).fill(&mut salt);
        Account {
            hash: digest(&salt, password),
            salt,
            admin,
        }
    }

    fn verify(&self, password: &str) -> bool {
        // Compare without an early exit, so timing says nothing about the hash.
        digest(&self.salt, password)
            .iter()
            .zip(&self.hash)
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
    }
}

/// The node's accounts.
#[derive(Debug)]
pub struct Users {
    path: Option<PathBuf>,
    accounts: RefCell<BTreeMap<String, Account>>,
}

thread_local! {
    /// The in-memory default accounts sessions share when their node gave them none (hashing
    /// the default password once per thread, not once per session).
    static DEFAULT: std::rc::Rc<Users> = std::rc::Rc::new(Users::in_memory());
}

/// The shared in-memory default accounts (`admin` / `123456`).
pub fn default_users() -> std::rc::Rc<Users> {
    DEFAULT.with(|u| u.clone())
}

impl Users {
    /// Accounts that live only in memory (tests, nodes without a metadata directory).
    pub fn in_memory() -> Users {
        // The default password is public, so its salt need not be random; drawing one would
        // consume the simulator's seeded randomness at a point that depends on which thread
        // built the defaults first, and break same-seed-same-trace.
        let salt = *b"porpoise-default";
        let admin = Account {
            hash: digest(&salt, "123456"),
            salt,
            admin: true,
        };
        let mut accounts = BTreeMap::new();
        accounts.insert("admin".to_string(), admin);
        Users {
            path: None,
            accounts: RefCell::new(accounts),
        }
    }

    /// No accounts at all: nobody can log in (used when the account file cannot be read, so
    /// a damaged file never falls back to the default password).
    pub fn locked() -> Users {
        Users {
            path: None,
            accounts: RefCell::new(BTreeMap::new()),
        }
    }

    /// Opens the account file at `path` (the default account when it does not exist yet).
    pub async fn open(path: PathBuf) -> Result<Users, EvalError> {
        let mut users = Users::in_memory();
        users.path = Some(path.clone());
        let bytes = match rt::disk::read_file(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(users),
            Err(e) => return Err(EvalError::msg(format!("{}: {e}", path.display()))),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| EvalError::msg(format!("{}: not UTF-8 text", path.display())))?;
        users.accounts = RefCell::new(parse_accounts(&path, &text)?);
        Ok(users)
    }

    async fn save(&self) -> Result<(), EvalError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text = encode_accounts(&self.accounts.borrow());
        rt::disk::replace_file(path, text.as_bytes())
            .await
            .map_err(|e| EvalError::msg(format!("{}: {e}", path.display())))
    }

    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.accounts
            .borrow()
            .get(user)
            .is_some_and(|a| a.verify(password))
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.accounts.borrow().get(user).is_some_and(|a| a.admin)
    }

    pub async fn set_password(&self, user: &str, password: &str) -> Result<(), EvalError> {
        let admin = {
            let accounts = self.accounts.borrow();
            let a = accounts
                .get(user)
                .ok_or_else(|| EvalError::msg(format!("The user {user} does not exist")))?;
            a.admin
        };
        check_password(password)?;
        self.accounts
            .borrow_mut()
            .insert(user.to_string(), Account::new(password, admin));
        self.save().await
    }

    pub async fn create(&self, user: &str, password: &str) -> Result<(), EvalError> {
        if user.is_empty()
            || user.len() > 30
            || !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(EvalError::msg(format!(
                "The user name '{user}' must be 1 to 30 letters, digits or underscores"
            )));
        }
        check_password(password)?;
        {
            let mut accounts = self.accounts.borrow_mut();
            if accounts.contains_key(user) {
                return Err(EvalError::msg(format!("The user {user} already exists")));
            }
            if accounts.len() >= ACCOUNTS_MAX {
                return Err(EvalError::msg(format!("at most {ACCOUNTS_MAX} users")));
            }
            accounts.insert(user.to_string(), Account::new(password, false));
        }
        self.save().await
    }

    pub async fn delete(&self, user: &str) -> Result<(), EvalError> {
        if user == "admin" {
            return Err(EvalError::msg("The user admin cannot be deleted"));
        }
        if self.accounts.borrow_mut().remove(user).is_none() {
            return Err(EvalError::msg(format!("The user {user} does not exist")));
        }
        self.save().await
    }
}

/// The account file's text.
fn encode_accounts(accounts: &BTreeMap<String, Account>) -> String {
    let mut text = format!("{ACCOUNTS_HEADER} {ACCOUNTS_FORMAT}\n");
    for (n, a) in accounts {
        text.push_str(&format!(
            "{n} {} {} {}\n",
            hex(&a.salt),
            hex(&a.hash),
            a.admin as u8
        ));
    }
    text
}

/// Parses the account file; errors name the file and line.
fn parse_accounts(path: &Path, text: &str) -> Result<BTreeMap<String, Account>, EvalError> {
    let mut lines = text.lines().enumerate().peekable();
    if let Some((_, first)) = lines.peek() {
        if let Some(rest) = first.strip_prefix(ACCOUNTS_HEADER) {
            let format: u32 = rest.trim().parse().map_err(|_| {
                EvalError::msg(format!(
                    "{}:1: the header names no format number",
                    path.display()
                ))
            })?;
            if format != ACCOUNTS_FORMAT {
                return Err(EvalError::msg(format!(
                    "{}: {}",
                    path.display(),
                    storage::format_refusal("account file", format, ACCOUNTS_FORMAT)
                )));
            }
            lines.next();
        }
    }
    let mut accounts = BTreeMap::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let parsed = match f.as_slice() {
            [name, salt, hash, admin] => {
                unhex::<16>(salt)
                    .zip(unhex::<32>(hash))
                    .map(|(salt, hash)| {
                        (
                            name.to_string(),
                            Account {
                                salt,
                                hash,
                                admin: *admin == "1",
                            },
                        )
                    })
            }
            _ => None,
        };
        let (name, account) = parsed.ok_or_else(|| {
            EvalError::msg(format!(
                "{}:{}: not an account line (name salt hash admin)",
                path.display(),
                n + 1
            ))
        })?;
        accounts.insert(name, account);
    }
    Ok(accounts)
}

fn check_password(p: &str) -> Result<(), EvalError> {
    if p.is_empty() || p.len() > 128 || p.chars().any(char::is_whitespace) {
        return Err(EvalError::msg(
            "A password must be 1 to 128 characters without spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_rt<F, Fut>(body: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        rt::Runtime::new("users")
            .run(move |_s: rt::shard::Shard<()>| body())
            .unwrap();
    }

    #[test]
    fn accounts_persist_hashed_and_verify() {
        on_rt(|| async {
            let dir = std::env::temp_dir().join(format!("porpoise-users-{}", std::process::id()));
            rt::disk::create_dir_all(&dir).await.unwrap();
            let path = dir.join("users");
            let _ = rt::disk::remove(&path).await;
            let u = Users::open(path.clone()).await.unwrap();
            assert!(u.verify("admin", "123456"));
            u.set_password("admin", "s3cret").await.unwrap();
            u.create("alice", "pw").await.unwrap();
            let text = String::from_utf8(rt::disk::read_file(&path).await.unwrap()).unwrap();
            assert!(text.starts_with("#porpoise-accounts 1\n"), "{text}");
            assert!(!text.contains("s3cret") && !text.contains(" pw "), "{text}");
            let again = Users::open(path.clone()).await.unwrap();
            assert!(again.verify("admin", "s3cret"));
            assert!(!again.verify("admin", "123456"));
            assert!(again.verify("alice", "pw") && !again.is_admin("alice"));
            assert!(again.delete("admin").await.is_err());
            // Format 0 (no header line) is still read.
            let legacy: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
            rt::disk::replace_file(&path, legacy.as_bytes())
                .await
                .unwrap();
            assert!(Users::open(path.clone())
                .await
                .unwrap()
                .verify("alice", "pw"));
            rt::disk::replace_file(&path, b"admin zz\n").await.unwrap();
            let e = Users::open(path.clone()).await.unwrap_err();
            assert!(e.to_string().contains("users:1"), "{e}");
            rt::disk::replace_file(&path, b"#porpoise-accounts 7\n")
                .await
                .unwrap();
            let e = Users::open(path).await.unwrap_err().to_string();
            assert!(
                e.contains("format 7") && e.contains("reads format 1"),
                "{e}"
            );
        });
    }

    #[test]
    fn the_account_file_encoding_is_pinned() {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            "admin".to_string(),
            Account {
                salt: *b"porpoise-default",
                hash: [0xab; 32],
                admin: true,
            },
        );
        let text = encode_accounts(&accounts);
        assert_eq!(
            text,
            "#porpoise-accounts 1\nadmin 706f72706f6973652d64656661756c74 \
             abababababababababababababababababababababababababababababababab 1\n"
        );
        assert_eq!(parse_accounts(Path::new("users"), &text).unwrap(), accounts);
    }
}
