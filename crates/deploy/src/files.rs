//! What the deployment gives each container, read from the files that
//! define it rather than retyped: the launch template's rendered user data
//! (`terraform/modules/service/templates/user-data.sh.tftpl`: the
//! `--env-file` contents and the arguments after the image) and the
//! service's Dockerfile (entry point, `ENV` defaults, `HEALTHCHECK`).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

/// What one launch template runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// The container name (`NAME=` in the script): gateway, detector or reporter.
    pub container: String,
    /// The container's `--env-file`, verbatim.
    pub env: BTreeMap<String, String>,
    /// Arguments after the image (the Dockerfile's entry point comes first).
    pub command: Vec<String>,
}

/// Decodes a launch template's base64 `user_data` and parses it.
pub fn user_data_from_base64(encoded: &str) -> Result<UserData, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("user data is not base64: {e}"))?;
    let script = String::from_utf8(bytes).map_err(|e| format!("user data is not UTF-8: {e}"))?;
    parse_user_data(&script)
}

/// Parses the rendered user-data script.
pub fn parse_user_data(script: &str) -> Result<UserData, String> {
    let container = script
        .lines()
        .find_map(|l| l.strip_prefix("NAME=\""))
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or("no NAME=\"...\" line in the user data")?
        .to_owned();

    let mut env = BTreeMap::new();
    let mut lines = script.lines();
    lines
        .by_ref()
        .find(|l| l.contains(".env\" <<'ENV'"))
        .ok_or("no env-file heredoc (<<'ENV') in the user data")?;
    let mut closed = false;
    for line in lines.by_ref() {
        if line == "ENV" {
            closed = true;
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        // Docker's --env-file: KEY=VALUE, the value taken literally.
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("env-file line without '=': {line:?}"))?;
        env.insert(key.to_owned(), value.to_owned());
    }
    if !closed {
        return Err("the env-file heredoc is not closed".into());
    }

    let command = script
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("\"$IMAGE\""))
        .ok_or("no `\"$IMAGE\" ...` line (the docker run arguments) in the user data")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(UserData {
        container,
        env,
        command,
    })
}

/// The final stage of a Dockerfile, as far as running the binary goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub entrypoint: Vec<String>,
    /// `ENV` of the final stage.
    pub env: BTreeMap<String, String>,
    /// The exec-form `HEALTHCHECK ... CMD [...]`, if any.
    pub healthcheck: Option<Vec<String>>,
}

impl Dockerfile {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        // Join continuation lines, drop comments.
        let mut instructions = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
                continue;
            }
            if let Some(head) = trimmed.strip_suffix('\\') {
                current.push_str(head);
                current.push(' ');
            } else {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
        // The final stage starts at the last FROM.
        let start = instructions
            .iter()
            .rposition(|i| i.to_ascii_uppercase().starts_with("FROM "))
            .ok_or("no FROM")?;
        let mut out = Dockerfile {
            entrypoint: Vec::new(),
            env: BTreeMap::new(),
            healthcheck: None,
        };
        for i in &instructions[start..] {
            let (word, rest) = i.split_once(' ').unwrap_or((i.as_str(), ""));
            match word.to_ascii_uppercase().as_str() {
                "ENTRYPOINT" => out.entrypoint = exec_form(rest)?,
                "ENV" => {
                    for pair in rest.split_whitespace() {
                        let (k, v) = pair
                            .split_once('=')
                            .ok_or_else(|| format!("ENV without '=': {pair}"))?;
                        out.env.insert(k.to_owned(), v.to_owned());
                    }
                }
                "HEALTHCHECK" => {
                    let cmd = rest
                        .split_once("CMD ")
                        .map(|(_, c)| c)
                        .ok_or_else(|| format!("HEALTHCHECK without CMD: {rest}"))?;
                    out.healthcheck = Some(exec_form(cmd)?);
                }
                _ => {}
            }
        }
        if out.entrypoint.is_empty() {
            return Err("no exec-form ENTRYPOINT in the final stage".into());
        }
        Ok(out)
    }
}

/// `["a", "b"]` → `[a, b]`.
fn exec_form(s: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(s.trim())
        .map_err(|e| format!("not an exec-form JSON array ({e}): {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_yields_the_env_file_and_the_command() {
        let script = "#!/bin/bash\nNAME=\"detector\"\ncat > \"/etc/polybot/$NAME.env\" <<'ENV'\nA=1\nB=x=y\nENV\n\
                      docker run -d --name \"$NAME\" \\\n  \"$IMAGE\" worker\n";
        let u = parse_user_data(script).expect("parses");
        assert_eq!(u.container, "detector");
        assert_eq!(u.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(u.env.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(u.command, ["worker"]);
    }

    #[test]
    fn the_final_stage_gives_entrypoint_env_and_healthcheck() {
        let text = "FROM a AS b\nENV X=1\nENTRYPOINT [\"b\"]\nFROM c\n# c\nENV P=1 \\\n    Q=2\n\
                    HEALTHCHECK --interval=30s \\\n    CMD [\"d\", \"healthcheck\", \"--url\", \"http://127.0.0.1:1/healthz\"]\nENTRYPOINT [\"d\"]\n";
        let d = Dockerfile::parse(text).expect("parses");
        assert_eq!(d.entrypoint, ["d"]);
        assert_eq!(d.env.len(), 2, "{:?}", d.env);
        assert_eq!(
            d.healthcheck.as_deref(),
            Some(
                &[
                    "d".to_owned(),
                    "healthcheck".into(),
                    "--url".into(),
                    "http://127.0.0.1:1/healthz".into()
                ][..]
            )
        );
    }
}
