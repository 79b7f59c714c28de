//! Which lexical family a file belongs to, by its name.

/// The languages the classifier knows. Each fixes the comment and string syntax and how test
/// blocks open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    /// JavaScript, TypeScript and their JSX, module and component variants.
    JavaScript,
    Go,
    /// Java, Kotlin, Scala, Groovy: `@Test` annotations, `"""` text blocks.
    Java,
    CSharp,
    /// C, C++, Objective-C, Swift, Dart: C comments and strings, no test blocks we know.
    C,
    Php,
    Python,
    Ruby,
    Shell,
    Yaml,
    Toml,
    Dockerfile,
    Sql,
}

impl Lang {
    /// The language of a path, or `None` for anything else (those lines stay plain code).
    pub fn of_path(path: &str) -> Option<Self> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        if lower == "dockerfile"
            || lower.starts_with("dockerfile.")
            || lower.ends_with(".dockerfile")
            || lower == "containerfile"
        {
            return Some(Self::Dockerfile);
        }
        if matches!(
            lower.as_str(),
            "gemfile" | "rakefile" | "podfile" | "vagrantfile"
        ) {
            return Some(Self::Ruby);
        }
        if matches!(
            lower.as_str(),
            "pipfile" | "cargo.lock" | "poetry.lock" | "uv.lock"
        ) {
            return Some(Self::Toml);
        }
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "rs" => Self::Rust,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => Self::JavaScript,
            "go" => Self::Go,
            "java" | "kt" | "kts" | "scala" | "groovy" | "gradle" => Self::Java,
            "cs" => Self::CSharp,
            "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "m" | "mm" | "swift"
            | "dart" => Self::C,
            "php" => Self::Php,
            "py" | "pyw" | "pyi" => Self::Python,
            "rb" | "rake" | "gemspec" | "ru" => Self::Ruby,
            "sh" | "bash" | "zsh" | "ksh" | "bats" => Self::Shell,
            "yml" | "yaml" => Self::Yaml,
            "toml" => Self::Toml,
            "sql" => Self::Sql,
            _ => return None,
        })
    }

    /// `//` and `/* */` comments.
    pub fn slash_comments(self) -> bool {
        matches!(
            self,
            Self::Rust
                | Self::JavaScript
                | Self::Go
                | Self::Java
                | Self::CSharp
                | Self::C
                | Self::Php
        )
    }

    /// `#` line comments.
    pub fn hash_comments(self) -> bool {
        matches!(
            self,
            Self::Php
                | Self::Python
                | Self::Ruby
                | Self::Shell
                | Self::Yaml
                | Self::Toml
                | Self::Dockerfile
        )
    }

    /// `'x'` is a character (or rune) literal, and a lone `'` a lifetime or label.
    pub fn char_literals(self) -> bool {
        matches!(
            self,
            Self::Rust | Self::Go | Self::Java | Self::CSharp | Self::C
        )
    }

    /// `"""` (and for Python and TOML `'''`) strings that may span lines.
    pub fn triple_quotes(self) -> bool {
        matches!(
            self,
            Self::Python | Self::Toml | Self::Java | Self::CSharp | Self::C
        )
    }

    /// Whether ordinary quoted strings may run over several lines.
    pub fn multiline_strings(self) -> bool {
        matches!(
            self,
            Self::Rust | Self::Php | Self::Ruby | Self::Shell | Self::Sql
        )
    }

    /// Heredocs: `<<EOF` (shell), `<<~EOS` (Ruby), `<<<EOT` (PHP).
    pub fn heredocs(self) -> bool {
        matches!(self, Self::Shell | Self::Ruby | Self::Php)
    }
}
