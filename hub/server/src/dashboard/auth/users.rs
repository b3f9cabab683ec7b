//! The users file and password hashes (see the parent module's docs).

use super::*;

/// Proves who a user is. The users file is one source; see the module docs
/// for how OIDC fits beside it.
pub trait IdentitySource: Send + Sync {
    /// The PHC hash to verify `name`'s password against, and its role;
    /// `None` if the source does not know the name.
    fn password_hash(&self, name: &str) -> Option<(&str, Role)>;
    /// The hash an unknown name is verified against (its result ignored),
    /// as costly as any real user's, so timing does not tell names apart.
    fn decoy_hash(&self) -> &str;
}

/// One account of the users file.
#[derive(Clone)]
struct Account {
    role: Role,
    password_hash: String,
}

/// The users file: names, roles and argon2 password hashes.
#[derive(Clone)]
pub struct Users {
    accounts: HashMap<String, Account>,
    /// The name whose hash is the costliest to verify.
    costliest: String,
}

impl fmt::Debug for Users {
    // Names and roles only: hashes stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self
            .accounts
            .iter()
            .map(|(name, account)| (name.as_str(), account.role))
            .collect();
        names.sort();
        f.debug_struct("Users").field("users", &names).finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: toml::Spanned<String>,
    role: Role,
    password_hash: toml::Spanned<String>,
}

impl Users {
    /// Reads the users file at `path`.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::one(path, "", format!("cannot read the file: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses users from TOML text (errors name the file `<users>`).
    pub fn from_toml(text: &str) -> Result<Self, AuthError> {
        Self::parse(Path::new("<users>"), text)
    }

    fn parse(file: &Path, text: &str) -> Result<Self, AuthError> {
        let parsed: UsersFile = lhcie_config::toml_file::parse(file, text)?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let mut problems = Vec::new();
        let mut accounts = HashMap::new();
        let mut lower_names = HashMap::new();
        let mut costliest: Option<(u64, String)> = None;
        for (index, entry) in parsed.user.into_iter().enumerate() {
            let name = entry.name.get_ref().clone();
            let name_line = Some(line_of(entry.name.span().start));
            let mut problem = |key: &str, line, message: String| {
                problems.push(Problem {
                    key: format!("user[{index}].{key}"),
                    line,
                    message,
                });
            };
            if let Some(why) = name_problem(&name) {
                problem("name", name_line, why);
                continue;
            }
            if let Some(first) = lower_names.insert(name.to_lowercase(), index) {
                problem(
                    "name",
                    name_line,
                    format!("duplicate user name {name:?} (also user[{first}], ignoring case)"),
                );
                continue;
            }
            let hash_line = Some(line_of(entry.password_hash.span().start));
            let hash = entry.password_hash.into_inner();
            let cost = match hash_cost(&hash) {
                Ok(cost) => cost,
                Err(why) => {
                    problem("password_hash", hash_line, why);
                    continue;
                }
            };
            if costliest.as_ref().is_none_or(|(most, _)| cost > *most) {
                costliest = Some((cost, name.clone()));
            }
            accounts.insert(
                name,
                Account {
                    role: entry.role,
                    password_hash: hash,
                },
            );
        }
        if problems.is_empty() && accounts.is_empty() {
            problems.push(Problem {
                key: "user".to_owned(),
                line: None,
                message: "no [[user]] is defined; nobody could log in".to_owned(),
            });
        }
        match costliest {
            Some((_, costliest)) if problems.is_empty() => Ok(Self {
                accounts,
                costliest,
            }),
            _ => Err(ConfigError {
                file: file.to_owned(),
                problems,
            }
            .into()),
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are none (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// `name`'s role, if `name` is a user.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.accounts.get(name).map(|account| account.role)
    }
}

impl IdentitySource for Users {
    fn password_hash(&self, name: &str) -> Option<(&str, Role)> {
        self.accounts
            .get(name)
            .map(|account| (account.password_hash.as_str(), account.role))
    }

    fn decoy_hash(&self) -> &str {
        self.accounts
            .get(&self.costliest)
            .map_or("", |account| account.password_hash.as_str())
    }
}

/// Why a user name cannot be used, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("the user name is empty".to_owned())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!("the user name is longer than {MAX_NAME_LEN} bytes"))
    } else if name.contains(':') || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some(format!(
            "user name {name:?} contains ':', a space or a control character (HTTP Basic could not carry it)"
        ))
    } else {
        None
    }
}

/// The relative cost of verifying against `hash` (memory × passes ×
/// lanes), or why it is not a usable argon2 PHC string.
fn hash_cost(hash: &str) -> Result<u64, String> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        format!(
            "not a PHC password hash ({e}); make one with lhcie_hub::dashboard::auth::hash_password"
        )
    })?;
    argon2::Algorithm::try_from(parsed.algorithm.as_str())
        .map_err(|_| format!("algorithm {} is not argon2", parsed.algorithm))?;
    let params = Params::try_from(&parsed).map_err(|e| format!("bad argon2 parameters: {e}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("the PHC string has no salt or no hash".to_owned());
    }
    Ok(u64::from(params.m_cost()) * u64::from(params.t_cost()) * u64::from(params.p_cost()))
}

/// Hashes `password` with argon2id, the crate's default (OWASP) parameters
/// and a random salt, as a PHC string for the users file.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt =
        argon2::password_hash::try_generate_salt().map_err(|e| AuthError::Random(e.to_string()))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}
