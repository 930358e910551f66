//! Loading `.bzl` and BUCK files, configurations, and the analysis of configured targets:
//! attribute coercion (select(), deps, toolchains, split transitions), the analysis
//! context (`ctx.attrs`, `ctx.label`, `ctx.actions`) and the checks Buck2 makes of what an
//! implementation registers.

// ctx.actions.run takes Buck2's keyword arguments, more than clippy's limit.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use allocative::Allocative;
use anyhow::{Context, anyhow, bail};
use dupe::Dupe;
use sha2::Digest;
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::environment::{FrozenModule, Globals, Methods, MethodsBuilder, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::starlark_module;
use starlark::syntax::AstModule;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::ListRef;
use starlark::values::none::NoneType;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, NoSerialize, StarlarkValue, Trace, Value, ValueLike, starlark_value};

use super::globals;
use super::values::*;
use starlark::values::FrozenValue;

/// A configuration: the constraint values of a platform (setting label -> value label).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    pub name: String,
    pub constraints: BTreeMap<String, String>,
}

impl Config {
    pub fn new(constraints: BTreeMap<String, String>) -> Config {
        if constraints.is_empty() {
            return Config {
                name: "unbound".into(),
                constraints,
            };
        }
        let text: String = constraints
            .iter()
            .map(|(k, v)| format!("{k}={v};"))
            .collect();
        let hash = hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8]);
        Config {
            name: hash,
            constraints,
        }
    }
}

/// One action a target registered.
#[derive(Clone, Debug)]
pub struct Action {
    pub category: String,
    pub identifier: Option<String>,
    pub kind: ActionKind,
    pub inputs: Vec<ArtifactData>,
    pub outputs: Vec<ArtifactData>,
}

#[derive(Clone, Debug)]
pub enum ActionKind {
    Run {
        cmd: CmdArgs,
        env: BTreeMap<String, String>,
        local_only: bool,
        allow_cache_upload: bool,
    },
    Write {
        content: Vec<u8>,
        executable: bool,
    },
    Download {
        url: String,
        sha256: String,
        executable: bool,
    },
    Copy {
        src: ArtifactData,
    },
}

impl Action {
    /// The command line of a run action, paths relative to the project root.
    pub fn argv(&self) -> Vec<String> {
        match &self.kind {
            ActionKind::Run { cmd, .. } => cmd.render(None),
            _ => Vec::new(),
        }
    }
}

/// The result of analysing one configured target.
pub struct Analysis {
    pub label: TargetLabel,
    pub config: Config,
    pub rule: String,
    pub actions: Vec<Action>,
    frozen: FrozenModule,
}

impl Analysis {
    /// Runs `f` on the target's providers (a list).
    pub fn with_providers<R>(&self, f: impl FnOnce(Value) -> R) -> R {
        let v = self
            .frozen
            .get_any_visibility("__providers__")
            .expect("analysed")
            .0;
        f(v.value())
    }
}

impl fmt::Debug for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Analysis({} {})", self.label, self.config.name)
    }
}

/// The targets of one BUCK file.
type Package = Rc<Vec<TargetNode>>;

/// A Buck2 project: cells on disk, evaluated lazily.
pub struct Project {
    pub root: PathBuf,
    pub cells: BTreeMap<String, PathBuf>,
    globals: Globals,
    modules: RefCell<HashMap<String, FrozenModule>>,
    packages: RefCell<HashMap<(String, String), Package>>,
    analyses: RefCell<HashMap<(TargetLabel, String), Rc<Analysis>>>,
    /// While analysing: to report cycles.
    in_progress: RefCell<Vec<(TargetLabel, String)>>,
    pub default_config: RefCell<Option<Config>>,
}

struct Loaded(HashMap<String, FrozenModule>);

impl FileLoader for Loaded {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        self.0
            .get(path)
            .map(|m| m.dupe())
            .ok_or_else(|| err(anyhow!("no module `{path}`")))
    }
}

impl Project {
    /// `cells`: name -> directory (relative to `root`, or absolute).
    pub fn new(root: &Path, cells: &[(&str, PathBuf)]) -> Project {
        Project {
            root: root.to_path_buf(),
            cells: cells
                .iter()
                .map(|(n, p)| (n.to_string(), p.clone()))
                .collect(),
            globals: globals::globals(),
            modules: RefCell::default(),
            packages: RefCell::default(),
            analyses: RefCell::default(),
            in_progress: RefCell::default(),
            default_config: RefCell::new(None),
        }
    }

    pub fn cell_dir(&self, cell: &str) -> anyhow::Result<PathBuf> {
        let p = self.cells.get(cell).ok_or_else(|| {
            anyhow!(
                "unknown cell `{cell}` (cells: {})",
                self.cells.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        Ok(self.root.join(p))
    }

    /// The path of a file of `cell` relative to the project root, as Buck2 renders sources.
    fn rel_path(&self, cell: &str, path: &str) -> String {
        let base = &self.cells[cell];
        let joined = if base.as_os_str() == "." || base.as_os_str().is_empty() {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        joined.display().to_string()
    }

    /// Resolves a load() string written in module `from` (`cell//pkg:file`).
    fn resolve_load(from: &str, load: &str) -> anyhow::Result<String> {
        let (cell, rest) = from.split_once("//").unwrap();
        let package = rest.rsplit_once(':').map(|(p, _)| p).unwrap_or("");
        if let Some(file) = load.strip_prefix(':') {
            return Ok(format!("{cell}//{package}:{file}"));
        }
        let l = load.strip_prefix('@').unwrap_or(load);
        let Some((c, r)) = l.split_once("//") else {
            bail!("load({load:?}) in {from}: expected :FILE, //PACKAGE:FILE or CELL//PACKAGE:FILE");
        };
        if !r.contains(':') {
            bail!("load({load:?}) in {from}: expected PACKAGE:FILE after //");
        }
        Ok(format!("{}//{r}", if c.is_empty() { cell } else { c }))
    }

    fn module_file(&self, id: &str) -> anyhow::Result<PathBuf> {
        let (cell, rest) = id.split_once("//").unwrap();
        let (package, file) = rest.rsplit_once(':').unwrap_or(("", rest));
        Ok(self.cell_dir(cell)?.join(package).join(file))
    }

    /// Evaluates `id` (`cell//pkg:file`), its loads first. `package_dir` makes it a BUCK
    /// file (targets recorded, prelude names as globals).
    fn eval_file(
        &self,
        id: &str,
        package_dir: Option<&Path>,
    ) -> anyhow::Result<(FrozenModule, Vec<TargetNode>)> {
        if let (None, Some(m)) = (package_dir, self.modules.borrow().get(id)) {
            return Ok((m.dupe(), Vec::new()));
        }
        let path = self.module_file(id)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {id} ({})", path.display()))?;
        let ast = AstModule::parse(id, text, &globals::dialect()).map_err(|e| anyhow!("{e}"))?;
        let mut loaded = HashMap::new();
        for l in ast.loads() {
            let target = Self::resolve_load(id, l.module_id)?;
            let (m, _) = self
                .eval_file(&target, None)
                .with_context(|| format!("loaded by {id}"))?;
            loaded.insert(l.module_id.to_string(), m);
        }
        let prelude = if package_dir.is_some() {
            Some(self.eval_file("prelude//:prelude.bzl", None)?.0)
        } else {
            None
        };
        let loader = Loaded(loaded);
        let state = EvalState {
            module: id.to_string(),
            package_dir: package_dir.map(Path::to_path_buf),
            targets: RefCell::default(),
        };
        let frozen = Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
            if let Some(p) = &prelude {
                // Buck2 gives BUCK files the prelude's rules as globals.
                for name in p.names() {
                    let name = name.as_str();
                    if name.starts_with('_') {
                        continue;
                    }
                    // Loaded names are the module's own, not exported: skip them.
                    let Ok(owned) = p.get(name) else { continue };
                    let v = owned.owned_value(module.frozen_heap());
                    module.set(name, v.unpack_frozen().unwrap().to_value());
                }
            }
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&loader);
                eval.extra = Some(&state);
                eval.eval_module(ast, &self.globals)?;
            }
            Ok(module.freeze()?)
        })
        .map_err(|e| anyhow!("{e}"))?;
        if package_dir.is_none() {
            self.modules
                .borrow_mut()
                .insert(id.to_string(), frozen.dupe());
        }
        Ok((frozen, state.targets.into_inner()))
    }

    /// The targets of `cell//package` (its BUCK file).
    pub fn package(&self, cell: &str, package: &str) -> anyhow::Result<Rc<Vec<TargetNode>>> {
        let key = (cell.to_string(), package.to_string());
        if let Some(p) = self.packages.borrow().get(&key) {
            return Ok(p.clone());
        }
        let dir = self.cell_dir(cell)?.join(package);
        let (_, targets) = self.eval_file(&format!("{cell}//{package}:BUCK"), Some(&dir))?;
        let targets = Rc::new(targets);
        self.packages.borrow_mut().insert(key, targets.clone());
        Ok(targets)
    }

    pub fn node(&self, label: &TargetLabel) -> anyhow::Result<TargetNode> {
        let pkg = self.package(&label.cell, &label.package)?;
        pkg.iter()
            .find(|t| t.name == label.name)
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "unknown target `{label}`; {}//{} has {}",
                    label.cell,
                    label.package,
                    pkg.iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The default target platform: prelude//platforms:default.
    pub fn default_config(&self) -> anyhow::Result<Config> {
        if let Some(c) = self.default_config.borrow().clone() {
            return Ok(c);
        }
        let label = TargetLabel::parse("prelude//platforms:default", "prelude", "")?;
        let a = self.analyze(&label, &Config::new(BTreeMap::new()))?;
        let config = a.with_providers(|ps| -> anyhow::Result<Config> {
            let list = ListRef::from_value(ps).unwrap();
            let p = list
                .iter()
                .find(|p| provider_instance(*p).is_some_and(|(pc, _)| pc.name() == "PlatformInfo"))
                .ok_or_else(|| anyhow!("no PlatformInfo"))?;
            config_of(field(p, "configuration").unwrap())
        })?;
        *self.default_config.borrow_mut() = Some(config.clone());
        Ok(config)
    }

    fn rule_of(&self, node: &TargetNode) -> anyhow::Result<starlark::values::OwnedFrozenValue> {
        let (m, _) = self.eval_file(&node.rule_module, None)?;
        let (v, _) = m
            .get_any_visibility(&node.rule_name)
            .map_err(|e| anyhow!("rule {} of {}: {e}", node.rule_name, node.rule_module))?;
        Ok(v)
    }

    /// Analyses `label` in `config` (memoised).
    pub fn analyze(&self, label: &TargetLabel, config: &Config) -> anyhow::Result<Rc<Analysis>> {
        let key = (label.clone(), config.name.clone());
        if let Some(a) = self.analyses.borrow().get(&key) {
            return Ok(a.clone());
        }
        if self.in_progress.borrow().contains(&key) {
            bail!("dependency cycle through {label}");
        }
        self.in_progress.borrow_mut().push(key.clone());
        let r = self.analyze_uncached(label, config);
        self.in_progress.borrow_mut().pop();
        let a = Rc::new(r.with_context(|| format!("analysing {label} ({})", config.name))?);
        self.analyses.borrow_mut().insert(key, a.clone());
        Ok(a)
    }

    /// Every analysis made so far.
    pub fn analyses(&self) -> Vec<Rc<Analysis>> {
        self.analyses.borrow().values().cloned().collect()
    }

    fn analyze_uncached(&self, label: &TargetLabel, config: &Config) -> anyhow::Result<Analysis> {
        let node = self.node(label)?;
        let rule_v = self.rule_of(&node)?;
        let rule = rule_v
            .value()
            .downcast_ref::<FrozenRule>()
            .ok_or_else(|| anyhow!("{} is not a rule", node.rule_name))?;
        let mut resolved = Vec::new();
        for (name, spec) in &rule.attrs {
            let value = match node.attrs.get(name) {
                Some(v) => v.clone(),
                None => spec
                    .default
                    .clone()
                    .ok_or_else(|| anyhow!("{label}: missing mandatory attribute `{name}`"))?,
            };
            let value = self
                .resolve_selects(&value, config, label)
                .with_context(|| format!("{label}: attribute `{name}`"))?;
            let r = self
                .coerce(&spec.kind, &value, label, config, &node)
                .with_context(|| format!("{label}: attribute `{name}`"))?;
            resolved.push((name.clone(), r));
        }
        let rule_name = node.rule_name.clone();
        let implementation = rule.implementation;
        let (frozen, actions) = Module::with_temp_heap(
            |module| -> anyhow::Result<(FrozenModule, Vec<Action>)> {
                let heap = module.heap();
                for (_, r) in &resolved {
                    add_refs(&module, r);
                }
                module.frozen_heap().add_reference(rule_v.owner());
                let fields: Vec<(String, Value)> = resolved
                    .iter()
                    .map(|(n, r)| (n.clone(), to_value(r, heap)))
                    .collect();
                let attrs = heap.alloc(AllocStruct(fields));
                let actions = heap.alloc_complex_no_freeze(Actions {
                    state: RefCell::new(ActionState::default()),
                    owner: label.clone(),
                    config: config.name.clone(),
                    out_dir: format!(
                        "buck-out/v2/gen/{}/{}/{}{}__{}__",
                        label.cell,
                        config.name,
                        label.package,
                        if label.package.is_empty() { "" } else { "/" },
                        label.name
                    ),
                });
                let ctx = heap.alloc_complex_no_freeze(Ctx {
                    attrs,
                    label: heap.alloc(LabelValue {
                        target: label.clone(),
                        config: Some(config.name.clone()),
                        sub: None,
                    }),
                    actions,
                });
                let result = {
                    let mut eval = Evaluator::new(&module);
                    eval.eval_function(implementation.to_value(), &[ctx], &[])
                        .map_err(|e| anyhow!("{}", e.without_diagnostic()))?
                };
                check_providers(result, &rule_name)?;
                let state = actions.downcast_ref::<Actions>().unwrap().state.borrow();
                let unbound: Vec<&ArtifactData> = state
                    .declared
                    .iter()
                    .filter(|a| !state.bound.contains(&a.path))
                    .collect();
                if let Some(a) = unbound.first() {
                    bail!(
                        "declared output `{}` is not bound by any action: every declared output must be the output of exactly one action",
                        a.short_path
                    );
                }
                let actions = state.actions.clone();
                drop(state);
                module.set("__providers__", result);
                Ok((module.freeze().map_err(|e| anyhow!("{e:?}"))?, actions))
            },
        )?;
        Ok(Analysis {
            label: label.clone(),
            config: config.clone(),
            rule: rule_name,
            actions,
            frozen,
        })
    }

    fn coerce(
        &self,
        kind: &AttrKind,
        v: &AttrValue,
        label: &TargetLabel,
        config: &Config,
        node: &TargetNode,
    ) -> anyhow::Result<Resolved> {
        let type_err = |want: &str| anyhow!("expected {want}, found {v:?}");
        Ok(match (kind, v) {
            (AttrKind::DefaultOnly(k), _) => self.coerce(k, v, label, config, node)?,
            (AttrKind::Option(_), AttrValue::None) => Resolved::None,
            (AttrKind::Option(k), _) => self.coerce(k, v, label, config, node)?,
            (AttrKind::String, AttrValue::Str(s)) => Resolved::Str(s.clone()),
            (AttrKind::String, _) => return Err(type_err("a string")),
            (AttrKind::Int, AttrValue::Int(i)) => Resolved::Int(*i),
            (AttrKind::Int, _) => return Err(type_err("an int")),
            (AttrKind::Bool, AttrValue::Bool(b)) => Resolved::Bool(*b),
            (AttrKind::Bool, _) => return Err(type_err("a bool")),
            (AttrKind::List(k), AttrValue::List(items)) => Resolved::List(
                items
                    .iter()
                    .map(|i| self.coerce(k, i, label, config, node))
                    .collect::<anyhow::Result<_>>()?,
            ),
            (AttrKind::List(_), _) => return Err(type_err("a list")),
            (AttrKind::Dict(kk, vk), AttrValue::Dict(items)) => Resolved::Dict(
                items
                    .iter()
                    .map(|(a, b)| {
                        Ok((
                            self.coerce(kk, a, label, config, node)?,
                            self.coerce(vk, b, label, config, node)?,
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?,
            ),
            (AttrKind::Dict(..), _) => return Err(type_err("a dict")),
            (AttrKind::Tuple(kinds), AttrValue::List(items)) if kinds.len() == items.len() => {
                Resolved::Tuple(
                    kinds
                        .iter()
                        .zip(items)
                        .map(|(k, i)| self.coerce(k, i, label, config, node))
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            (AttrKind::Tuple(kinds), _) => {
                return Err(type_err(&format!("a tuple of {}", kinds.len())));
            }
            (AttrKind::Source, AttrValue::Str(s)) => {
                if s.starts_with(':') || s.contains("//") {
                    let (l, sub) = split_sub_target(s);
                    let dep =
                        self.analyze(&TargetLabel::parse(l, &label.cell, &label.package)?, config)?;
                    let outs = default_outputs(&dep, sub)?;
                    if outs.len() != 1 {
                        bail!(
                            "source attribute {s}: expected a target with one default output, found {}",
                            outs.len()
                        );
                    }
                    Resolved::Artifact(outs[0].clone())
                } else {
                    Resolved::Artifact(self.source(label, s)?)
                }
            }
            (AttrKind::Source, _) => return Err(type_err("a source path or label")),
            (AttrKind::Dep { providers, exec }, AttrValue::Str(s)) => {
                let (l, sub) = split_sub_target(s);
                let target = TargetLabel::parse(l, &label.cell, &label.package)?;
                let cfg = if *exec {
                    self.default_config()?
                } else {
                    config.clone()
                };
                let dep = self.analyze(&target, &cfg)?;
                if self.is_toolchain(&target)? {
                    bail!(
                        "`{target}` is a toolchain rule; Buck2 refuses a toolchain rule as a plain dependency (use attrs.toolchain_dep)"
                    );
                }
                check_dep_providers(&dep, sub, providers)?;
                Resolved::Dep(dep, sub.map(String::from))
            }
            (AttrKind::ToolchainDep { providers }, AttrValue::Str(s)) => {
                let target = TargetLabel::parse(s, &label.cell, &label.package)?;
                if !self.is_toolchain(&target)? {
                    bail!(
                        "`{target}` is not a toolchain rule; Buck2 requires attrs.toolchain_dep to point to a rule with is_toolchain_rule = True"
                    );
                }
                let dep = self.analyze(&target, config)?;
                check_dep_providers(&dep, None, providers)?;
                Resolved::Dep(dep, None)
            }
            (AttrKind::ConfigurationLabel, AttrValue::Str(s)) => {
                let (l, sub) = split_sub_target(s);
                let target = TargetLabel::parse(l, &label.cell, &label.package)?;
                let dep = self.analyze(&target, &Config::new(BTreeMap::new()))?;
                providers_of(&dep, sub)?;
                Resolved::Dep(dep, sub.map(String::from))
            }
            (
                AttrKind::SplitTransitionDep {
                    transition,
                    providers,
                },
                AttrValue::Str(s),
            ) => {
                let target = TargetLabel::parse(s, &label.cell, &label.package)?;
                let mut out = Vec::new();
                for (key, cfg) in self.split(transition, config, label, node)? {
                    let dep = self.analyze(&target, &cfg)?;
                    check_dep_providers(&dep, None, providers)?;
                    out.push((key, dep));
                }
                Resolved::Split(out)
            }
            (
                AttrKind::Dep { .. }
                | AttrKind::ToolchainDep { .. }
                | AttrKind::ConfigurationLabel
                | AttrKind::SplitTransitionDep { .. },
                _,
            ) => {
                return Err(type_err("a target label"));
            }
        })
    }

    fn is_toolchain(&self, target: &TargetLabel) -> anyhow::Result<bool> {
        let node = self.node(target)?;
        let v = self.rule_of(&node)?;
        Ok(v.value()
            .downcast_ref::<FrozenRule>()
            .is_some_and(|r| r.is_toolchain_rule))
    }

    /// A source file of `label`'s package, checked as Buck2 does.
    fn source(&self, label: &TargetLabel, path: &str) -> anyhow::Result<ArtifactData> {
        if path.split('/').any(|c| c == ".." || c == ".") || path.starts_with('/') {
            bail!(
                "source {path:?}: Buck2 source paths are relative to the package, without `.` or `..`"
            );
        }
        let dir = self.cell_dir(&label.cell)?.join(&label.package);
        let full = dir.join(path);
        if !full.exists() {
            bail!(
                "source {path:?} of {label} does not exist ({})",
                full.display()
            );
        }
        // A source may not lie in a subpackage.
        let mut sub = dir.clone();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            sub = sub.join(c);
            if sub.join("BUCK").exists() {
                bail!(
                    "source {path:?} of {label} crosses into the package {}",
                    sub.display()
                );
            }
        }
        let pkg_path = if label.package.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", label.package)
        };
        Ok(ArtifactData {
            path: self.rel_path(&label.cell, &pkg_path),
            short_path: path.to_string(),
            owner: None,
            is_dir: full.is_dir(),
        })
    }

    /// What a select() key requires of a configuration: (setting, value, the setting's
    /// default value) for each constraint of the key's ConfigurationInfo, as Buck2 reads a
    /// key (a constraint value, a configuration alias, a config setting).
    fn select_key(
        &self,
        key: &str,
        at: &TargetLabel,
    ) -> anyhow::Result<Vec<(String, String, Option<String>)>> {
        let (l, sub) = split_sub_target(key);
        let target = TargetLabel::parse(l, &at.cell, &at.package)
            .with_context(|| format!("select() key {key:?}"))?;
        let a = self
            .analyze(&target, &Config::new(BTreeMap::new()))
            .with_context(|| format!("select() key {key:?}"))?;
        let providers = providers_of(&a, sub)?;
        let info = providers
            .iter()
            .map(|p| p.to_value())
            .find(|p| provider_instance(*p).is_some_and(|(pc, _)| pc.name() == "ConfigurationInfo"))
            .ok_or_else(|| anyhow!("select() key {key:?} gives no ConfigurationInfo; Buck2 keys are constraint values or config settings"))?;
        let constraints = DictRef::from_value(field(info, "constraints").unwrap()).unwrap();
        Ok(constraints
            .iter()
            .map(|(k, v)| {
                let default = field(v, "setting")
                    .and_then(|s| field(s, "default"))
                    .filter(|d| !d.is_none())
                    .map(|d| d.to_str());
                (k.to_str(), field(v, "label").unwrap().to_str(), default)
            })
            .collect())
    }

    /// Replaces every select() by the branch the configuration matches, as Buck2 does: the
    /// one matching key, or the one that refines every other match, else DEFAULT; no match
    /// and no DEFAULT, or an ambiguous match, is an error.
    /// `at`: the target whose attribute it is (relative keys resolve in its package).
    pub fn resolve_selects(
        &self,
        v: &AttrValue,
        config: &Config,
        at: &TargetLabel,
    ) -> anyhow::Result<AttrValue> {
        Ok(match v {
            AttrValue::Select(branches) => {
                let mut hits = Vec::new();
                for (k, v) in branches.iter().filter(|(k, _)| k != "DEFAULT") {
                    let reqs = self.select_key(k, at)?;
                    let matched = reqs.iter().all(|(setting, value, default)| {
                        match config.constraints.get(setting) {
                            Some(have) => have == value,
                            None => default.as_deref() == Some(value.as_str()),
                        }
                    });
                    if matched {
                        hits.push((k, v, reqs));
                    }
                }
                let refines =
                    |a: &[(String, String, Option<String>)],
                     b: &[(String, String, Option<String>)]| {
                        b.iter().all(|x| a.contains(x))
                    };
                let chosen = match hits.len() {
                    0 => branches
                        .iter()
                        .find(|(k, _)| k == "DEFAULT")
                        .map(|(_, v)| v),
                    1 => Some(hits[0].1),
                    _ => {
                        let best = hits
                            .iter()
                            .find(|h| hits.iter().all(|o| refines(&h.2, &o.2)));
                        match best {
                            Some(h) => Some(h.1),
                            None => bail!(
                                "select() is ambiguous in configuration {}: {} all match and none refines the others",
                                config.name,
                                hits.iter()
                                    .map(|h| h.0.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }
                    }
                };
                match chosen {
                    Some(v) => self.resolve_selects(v, config, at)?,
                    None => bail!(
                        "select() has no branch for the configuration {} ({}) and no DEFAULT",
                        config.name,
                        config
                            .constraints
                            .values()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
            AttrValue::List(items) => AttrValue::List(
                items
                    .iter()
                    .map(|i| self.resolve_selects(i, config, at))
                    .collect::<anyhow::Result<_>>()?,
            ),
            AttrValue::Dict(items) => AttrValue::Dict(
                items
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            self.resolve_selects(k, config, at)?,
                            self.resolve_selects(v, config, at)?,
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Calls a split transition: the configurations of each split key, in its order.
    fn split(
        &self,
        transition: &(String, String),
        config: &Config,
        label: &TargetLabel,
        node: &TargetNode,
    ) -> anyhow::Result<Vec<(String, Config)>> {
        let (m, _) = self.eval_file(&transition.0, None)?;
        let (tv, _) = m
            .get_any_visibility(&transition.1)
            .map_err(|e| anyhow!("{e}"))?;
        let t = tv
            .value()
            .downcast_ref::<FrozenTransition>()
            .ok_or_else(|| anyhow!("not a transition"))?;
        let unbound = Config::new(BTreeMap::new());
        let mut refs = Vec::new();
        for (name, l) in &t.refs {
            let (l, sub) = split_sub_target(l);
            let target = TargetLabel::parse(l, "root", "")?;
            let a = self.analyze(&target, &unbound)?;
            providers_of(&a, sub).with_context(|| format!("transition ref {name}"))?;
            refs.push((name.clone(), a, sub.map(String::from)));
        }
        let mut values = Vec::new();
        for value in config.constraints.values() {
            let (l, sub) = split_sub_target(value);
            let a = self.analyze(&TargetLabel::parse(l, "root", "")?, &unbound)?;
            values.push((a, sub.map(String::from)));
        }
        let mut attr_values = Vec::new();
        for a in &t.attrs {
            let v = node.attrs.get(a).cloned().unwrap_or(AttrValue::None);
            attr_values.push((a.clone(), self.resolve_selects(&v, config, label)?));
        }
        let platform_label = format!("cfg:{}", config.name);
        let implementation = t.implementation;
        Module::with_temp_heap(|module| -> anyhow::Result<Vec<(String, Config)>> {
            let heap = module.heap();
            module.frozen_heap().add_reference(tv.owner());
            for (_, a, _) in &refs {
                module.frozen_heap().add_reference(a.frozen.frozen_heap());
            }
            for (a, _) in &values {
                module.frozen_heap().add_reference(a.frozen.frozen_heap());
            }
            let lookup = |name: &str| -> Value {
                self.globals
                    .iter()
                    .find(|(n, _)| *n == name)
                    .unwrap()
                    .1
                    .to_value()
            };
            // platform: PlatformInfo(label, configuration = ConfigurationInfo(constraints, values))
            let mut constraints = Vec::new();
            for (a, sub) in &values {
                let cv = providers_of(a, sub.as_deref())?
                    .into_iter()
                    .map(|p| p.to_value())
                    .find(|p| {
                        provider_instance(*p)
                            .is_some_and(|(pc, _)| pc.name() == "ConstraintValueInfo")
                    })
                    .ok_or_else(|| anyhow!("{} gives no ConstraintValueInfo", a.label))?;
                let setting = field(cv, "setting")
                    .and_then(|s| field(s, "label"))
                    .unwrap();
                constraints.push((setting, cv));
            }
            let mut eval = Evaluator::new(&module);
            let configuration = eval
                .eval_function(
                    lookup("ConfigurationInfo"),
                    &[],
                    &[
                        ("constraints", heap.alloc(AllocDict(constraints))),
                        (
                            "values",
                            heap.alloc(AllocDict(Vec::<(Value, Value)>::new())),
                        ),
                    ],
                )
                .map_err(|e| anyhow!("{e}"))?;
            let platform = eval
                .eval_function(
                    lookup("PlatformInfo"),
                    &[],
                    &[
                        ("label", heap.alloc(platform_label.as_str())),
                        ("configuration", configuration),
                    ],
                )
                .map_err(|e| anyhow!("{e}"))?;
            let ref_fields: Vec<(String, Value)> = refs
                .iter()
                .map(|(n, a, sub)| (n.clone(), dependency_value(a, sub.as_deref(), heap)))
                .collect();
            let attr_fields: Vec<(String, Value)> = attr_values
                .iter()
                .map(|(n, v)| (n.clone(), attr_to_value(v, heap)))
                .collect();
            let out = eval
                .eval_function(
                    implementation.to_value(),
                    &[],
                    // Buck2 passes these by keyword: the names are part of the contract.
                    &[
                        ("platform", platform),
                        ("refs", heap.alloc(AllocStruct(ref_fields))),
                        ("attrs", heap.alloc(AllocStruct(attr_fields))),
                    ],
                )
                .map_err(|e| anyhow!("{}", e.without_diagnostic()))?;
            let d = DictRef::from_value(out)
                .ok_or_else(|| anyhow!("a split transition returns a dict of PlatformInfo"))?;
            let mut result = Vec::new();
            for (k, p) in d.iter() {
                let key = k
                    .unpack_str()
                    .ok_or_else(|| anyhow!("split keys are strings"))?
                    .to_string();
                let c = field(p, "configuration")
                    .ok_or_else(|| anyhow!("split value {key}: expected a PlatformInfo"))?;
                result.push((key, config_of(c)?));
            }
            Ok(result)
        })
    }
}

/// The configuration a ConfigurationInfo names.
fn config_of(c: Value) -> anyhow::Result<Config> {
    let constraints = field(c, "constraints")
        .and_then(DictRef::from_value)
        .ok_or_else(|| anyhow!("ConfigurationInfo.constraints must be a dict"))?;
    let mut map = BTreeMap::new();
    for (k, v) in constraints.iter() {
        let value = field(v, "label")
            .ok_or_else(|| anyhow!("constraint values must be ConstraintValueInfo"))?;
        map.insert(k.to_str(), value.to_str());
    }
    Ok(Config::new(map))
}

fn find_provider<'v>(providers: Value<'v>, name: &str) -> Option<Value<'v>> {
    ListRef::from_value(providers)?
        .iter()
        .find(|p| provider_instance(*p).is_some_and(|(pc, _)| pc.name() == name))
}

pub fn default_outputs(a: &Analysis, sub: Option<&str>) -> anyhow::Result<Vec<ArtifactData>> {
    let providers = providers_of(a, sub)?;
    let d = providers
        .iter()
        .map(|p| p.to_value())
        .find(|p| provider_instance(*p).is_some_and(|(pc, _)| pc.name() == "DefaultInfo"))
        .ok_or_else(|| anyhow!("{} gives no DefaultInfo", a.label))?;
    Ok(ListRef::from_value(field(d, "default_outputs").unwrap())
        .unwrap()
        .iter()
        .map(|v| v.downcast_ref::<Artifact>().unwrap().0.clone())
        .collect())
}

fn check_dep_providers(
    dep: &Analysis,
    sub: Option<&str>,
    providers: &[(u64, String)],
) -> anyhow::Result<()> {
    let have = providers_of(dep, sub)?;
    for (id, name) in providers {
        if !have
            .iter()
            .any(|p| provider_instance(p.to_value()).is_some_and(|(pc, _)| pc.id == *id))
        {
            bail!("`{}` does not give the required provider {name}", dep.label);
        }
    }
    Ok(())
}

fn check_providers(result: Value, rule: &str) -> anyhow::Result<()> {
    let list = ListRef::from_value(result).ok_or_else(|| {
        anyhow!(
            "{rule}: the implementation returned {}, expected a list of providers",
            result.to_repr()
        )
    })?;
    let mut names = HashSet::new();
    for p in list.iter() {
        let Some((pc, _)) = provider_instance(p) else {
            bail!(
                "{rule}: the implementation returned {} in its providers",
                p.to_repr()
            );
        };
        if !names.insert(pc.id) {
            bail!("{rule}: provider {} returned twice", pc.name());
        }
    }
    if !list
        .iter()
        .any(|p| provider_instance(p).is_some_and(|(pc, _)| pc.name() == "DefaultInfo"))
    {
        bail!("{rule}: the implementation must return a DefaultInfo");
    }
    Ok(())
}

/// An attribute value after configuration and coercion.
pub enum Resolved {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Resolved>),
    Tuple(Vec<Resolved>),
    Dict(Vec<(Resolved, Resolved)>),
    Artifact(ArtifactData),
    Dep(Rc<Analysis>, Option<String>),
    Split(Vec<(String, Rc<Analysis>)>),
}

fn add_refs(module: &Module, r: &Resolved) {
    match r {
        Resolved::Dep(a, _) => module.frozen_heap().add_reference(a.frozen.frozen_heap()),
        Resolved::Split(s) => s
            .iter()
            .for_each(|(_, a)| module.frozen_heap().add_reference(a.frozen.frozen_heap())),
        Resolved::List(l) | Resolved::Tuple(l) => l.iter().for_each(|x| add_refs(module, x)),
        Resolved::Dict(d) => d.iter().for_each(|(k, v)| {
            add_refs(module, k);
            add_refs(module, v)
        }),
        _ => {}
    }
}

/// The providers of `a`, or of its sub-target `sub` (DefaultInfo's sub_targets).
fn providers_of(a: &Analysis, sub: Option<&str>) -> anyhow::Result<Vec<FrozenValue>> {
    a.with_providers(|ps| {
        let all: Vec<Value> = ListRef::from_value(ps).unwrap().iter().collect();
        let list = match sub {
            None => all,
            Some(name) => {
                let d = find_provider(ps, "DefaultInfo").unwrap();
                let subs = DictRef::from_value(field(d, "sub_targets").unwrap()).unwrap();
                let v = subs.get_str(name).ok_or_else(|| {
                    anyhow!(
                        "`{}` has no sub-target [{name}]; it has {}",
                        a.label,
                        subs.keys()
                            .map(|k| format!("[{}]", k.unpack_str().unwrap_or("?")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                ListRef::from_value(v).unwrap().iter().collect()
            }
        };
        Ok(list
            .into_iter()
            .map(|p| p.unpack_frozen().unwrap())
            .collect())
    })
}

fn dependency_value<'v>(a: &Analysis, sub: Option<&str>, heap: Heap<'v>) -> Value<'v> {
    let providers: Vec<Value<'v>> = providers_of(a, sub)
        .unwrap()
        .into_iter()
        .map(|p| p.to_value())
        .collect();
    heap.alloc(Dependency {
        label: heap.alloc(LabelValue {
            target: a.label.clone(),
            config: Some(a.config.name.clone()),
            sub: sub.map(String::from),
        }),
        providers,
    })
}

fn to_value<'v>(r: &Resolved, heap: Heap<'v>) -> Value<'v> {
    match r {
        Resolved::None => Value::new_none(),
        Resolved::Bool(b) => Value::new_bool(*b),
        Resolved::Int(i) => heap.alloc(*i as i32),
        Resolved::Str(s) => heap.alloc(s.as_str()),
        Resolved::List(l) => heap.alloc(l.iter().map(|x| to_value(x, heap)).collect::<Vec<_>>()),
        Resolved::Tuple(l) => heap.alloc(starlark::values::tuple::AllocTuple(
            l.iter().map(|x| to_value(x, heap)).collect::<Vec<_>>(),
        )),
        Resolved::Dict(d) => heap.alloc(AllocDict(
            d.iter()
                .map(|(k, v)| (to_value(k, heap), to_value(v, heap)))
                .collect::<Vec<_>>(),
        )),
        Resolved::Artifact(a) => heap.alloc(Artifact(a.clone())),
        Resolved::Dep(a, sub) => dependency_value(a, sub.as_deref(), heap),
        Resolved::Split(s) => heap.alloc(AllocDict(
            s.iter()
                .map(|(k, a)| (heap.alloc(k.as_str()), dependency_value(a, None, heap)))
                .collect::<Vec<_>>(),
        )),
    }
}

fn attr_to_value<'v>(v: &AttrValue, heap: Heap<'v>) -> Value<'v> {
    match v {
        AttrValue::None | AttrValue::Select(_) => Value::new_none(),
        AttrValue::Bool(b) => Value::new_bool(*b),
        AttrValue::Int(i) => heap.alloc(*i as i32),
        AttrValue::Str(s) => heap.alloc(s.as_str()),
        AttrValue::List(l) => {
            heap.alloc(l.iter().map(|x| attr_to_value(x, heap)).collect::<Vec<_>>())
        }
        AttrValue::Dict(d) => heap.alloc(AllocDict(
            d.iter()
                .map(|(k, v)| (attr_to_value(k, heap), attr_to_value(v, heap)))
                .collect::<Vec<_>>(),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// ctx and ctx.actions

#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Ctx<'v> {
    attrs: Value<'v>,
    label: Value<'v>,
    actions: Value<'v>,
}

impl fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<ctx {}>", self.label)
    }
}

#[starlark_value(type = "AnalysisContext")]
impl<'v> StarlarkValue<'v> for Ctx<'v> {
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "attrs" => Some(self.attrs),
            "label" => Some(self.label),
            "actions" => Some(self.actions),
            _ => None,
        }
    }
    fn dir_attr(&self) -> Vec<String> {
        vec!["actions".into(), "attrs".into(), "label".into()]
    }
}

#[derive(Debug, Default)]
pub struct ActionState {
    declared: Vec<ArtifactData>,
    bound: HashSet<String>,
    actions: Vec<Action>,
}

#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Actions {
    #[allocative(skip)]
    #[trace(static)]
    state: RefCell<ActionState>,
    #[trace(static)]
    owner: TargetLabel,
    config: String,
    out_dir: String,
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<actions of {}>", self.owner)
    }
}

fn valid_category(c: &str) -> bool {
    // ^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$
    !c.is_empty()
        && c.split('_').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|f| f.is_ascii_lowercase())
                && chars.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        })
}

impl Actions {
    fn declare(&self, path: &str, is_dir: bool) -> anyhow::Result<Artifact> {
        if path.is_empty()
            || path.starts_with('/')
            || path.split('/').any(|c| c == ".." || c.is_empty())
        {
            bail!("declare_output({path:?}): expected a relative path without `..`");
        }
        let mut st = self.state.borrow_mut();
        if st.declared.iter().any(|a| a.short_path == path) {
            bail!("declare_output({path:?}): declared twice");
        }
        let a = ArtifactData {
            path: format!("{}/{path}", self.out_dir),
            short_path: path.to_string(),
            owner: Some((self.owner.clone(), self.config.clone())),
            is_dir,
        };
        st.declared.push(a.clone());
        Ok(Artifact(a))
    }

    fn register(
        &self,
        category: &str,
        identifier: Option<String>,
        kind: ActionKind,
        inputs: Vec<ArtifactData>,
        outputs: Vec<ArtifactData>,
    ) -> anyhow::Result<()> {
        if !valid_category(category) {
            bail!(
                "category {category:?} does not match ^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$, as Buck2 requires"
            );
        }
        let mut st = self.state.borrow_mut();
        let same: Vec<&Action> = st
            .actions
            .iter()
            .filter(|a| a.category == category)
            .collect();
        if !same.is_empty() {
            if identifier.is_none() || same.iter().any(|a| a.identifier.is_none()) {
                bail!(
                    "category `{category}` is used by more than one action of {}, so Buck2 requires an identifier on every one of them",
                    self.owner
                );
            }
            if same.iter().any(|a| a.identifier == identifier) {
                bail!(
                    "category `{category}` with identifier {identifier:?} is used twice by {}; each (category, identifier) must be unique",
                    self.owner
                );
            }
        }
        if outputs.is_empty() {
            bail!("action `{category}` has no outputs; every Buck2 action must bind at least one");
        }
        for o in &outputs {
            if !st.declared.iter().any(|d| d.path == o.path) {
                bail!(
                    "action `{category}` binds {}, which this target did not declare",
                    o.short_path
                );
            }
            if !st.bound.insert(o.path.clone()) {
                bail!(
                    "output `{}` is bound by a second action (`{category}`); an output is bound exactly once",
                    o.short_path
                );
            }
        }
        st.actions.push(Action {
            category: category.to_string(),
            identifier,
            kind,
            inputs,
            outputs,
        });
        Ok(())
    }

    fn output_of<'v>(&self, v: Value<'v>, what: &str) -> anyhow::Result<ArtifactData> {
        if let Some(o) = v.downcast_ref::<OutputArtifact>() {
            return Ok(o.0.clone());
        }
        if let Some(a) = v.downcast_ref::<Artifact>() {
            if a.0.is_source() {
                bail!("{what}: {a} is a source artifact, not an output");
            }
            return Ok(a.0.clone());
        }
        if let Some(s) = v.unpack_str() {
            return Ok(self.declare(s, false)?.0);
        }
        bail!(
            "{what}: expected an output artifact or a file name, found {}",
            v.to_repr()
        )
    }
}

#[starlark_module]
fn actions_methods(builder: &mut MethodsBuilder) {
    // (each method takes the Actions value and downcasts it: it is never frozen)
    fn declare_output<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] prefix: &str,
        #[starlark(require = pos)] filename: Option<&str>,
        #[starlark(require = named, default = false)] dir: bool,
    ) -> anyhow::Result<Artifact> {
        let path = match filename {
            Some(f) => format!("{prefix}/{f}"),
            None => prefix.to_string(),
        };
        actions(this).declare(&path, dir)
    }

    fn run<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] arguments: Value<'v>,
        #[starlark(require = named)] category: &str,
        #[starlark(require = named)] identifier: Option<Value<'v>>,
        #[starlark(require = named)] env: Option<SmallMap<String, String>>,
        #[starlark(require = named, default = false)] local_only: bool,
        #[starlark(require = named)] prefer_local: Option<bool>,
        #[starlark(require = named)] prefer_remote: Option<bool>,
        #[starlark(require = named)] allow_cache_upload: Option<Value<'v>>,
        #[starlark(require = named)] weight: Option<i32>,
        #[starlark(require = named)] timeout_seconds: Option<i32>,
    ) -> anyhow::Result<NoneType> {
        let _ = (prefer_local, prefer_remote, weight, timeout_seconds);
        let mut cmd = CmdArgs::default();
        CmdArgs::push_value(&mut cmd.items, arguments)?;
        let identifier = match identifier {
            Some(v) if !v.is_none() => Some(
                v.unpack_str()
                    .ok_or_else(|| anyhow!("run(identifier): expected a string"))?
                    .to_string(),
            ),
            _ => None,
        };
        let allow_cache_upload = match allow_cache_upload {
            Some(v) if !v.is_none() => v
                .unpack_bool()
                .ok_or_else(|| anyhow!("run(allow_cache_upload): expected a bool or None"))?,
            _ => false,
        };
        let (inputs, outputs) = cmd.artifacts();
        let env = env.map(|e| e.into_iter().collect()).unwrap_or_default();
        actions(this).register(
            category,
            identifier,
            ActionKind::Run {
                cmd,
                env,
                local_only,
                allow_cache_upload,
            },
            inputs,
            outputs,
        )?;
        Ok(NoneType)
    }

    fn write<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] content: Value<'v>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named, default = false)] allow_args: bool,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let out = actions(this).output_of(output, "write()")?;
        let (text, inputs) = match content.unpack_str() {
            Some(s) => (s.to_string(), Vec::new()),
            None => {
                if !allow_args {
                    bail!("write(): content with artifacts needs allow_args = True");
                }
                let mut c = CmdArgs::default();
                CmdArgs::push_value(&mut c.items, content)?;
                (c.render(None).join("\n"), c.artifacts().0)
            }
        };
        actions(this).register(
            "write",
            Some(out.short_path.clone()),
            ActionKind::Write {
                content: text.into_bytes(),
                executable: is_executable,
            },
            inputs,
            vec![out.clone()],
        )?;
        Ok(heap.alloc(Artifact(out)))
    }

    fn write_json<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] content: Value<'v>,
        #[starlark(require = named, default = false)] pretty: bool,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let out = actions(this).output_of(output, "write_json()")?;
        let json = content
            .to_json_value()
            .map_err(|e| anyhow!("write_json(): {e}"))?;
        let text = if pretty {
            serde_json::to_string_pretty(&json)?
        } else {
            serde_json::to_string(&json)?
        };
        actions(this).register(
            "write_json",
            Some(out.short_path.clone()),
            ActionKind::Write {
                content: text.into_bytes(),
                executable: false,
            },
            Vec::new(),
            vec![out.clone()],
        )?;
        Ok(heap.alloc(Artifact(out)))
    }

    fn copy_file<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] dest: Value<'v>,
        #[starlark(require = pos)] src: Value<'v>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let out = actions(this).output_of(dest, "copy_file()")?;
        let src = src
            .downcast_ref::<Artifact>()
            .ok_or_else(|| anyhow!("copy_file(): src must be an artifact"))?
            .0
            .clone();
        actions(this).register(
            "copy",
            Some(out.short_path.clone()),
            ActionKind::Copy { src: src.clone() },
            vec![src],
            vec![out.clone()],
        )?;
        Ok(heap.alloc(Artifact(out)))
    }

    fn download_file<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] url: &str,
        #[starlark(require = named)] sha256: Option<&str>,
        #[starlark(require = named, default = false)] is_executable: bool,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let out = actions(this).output_of(output, "download_file()")?;
        let sha256 = sha256
            .ok_or_else(|| anyhow!("download_file(): the contract requires sha256"))?
            .to_string();
        actions(this).register(
            "download_file",
            Some(out.short_path.clone()),
            ActionKind::Download {
                url: url.to_string(),
                sha256,
                executable: is_executable,
            },
            Vec::new(),
            vec![out.clone()],
        )?;
        Ok(heap.alloc(Artifact(out)))
    }
}
starlark::methods_static!(ACTIONS_METHODS = actions_methods);

fn actions<'v>(v: Value<'v>) -> &'v Actions {
    v.downcast_ref::<Actions>().expect("ctx.actions")
}

#[starlark_value(type = "AnalysisActions")]
impl<'v> StarlarkValue<'v> for Actions {
    fn get_methods() -> Option<&'static Methods> {
        Some(ACTIONS_METHODS.methods())
    }
}

/// glob() in a package directory: `*` within a name, `**` across directories; files only,
/// sorted, never descending into subpackages.
pub fn glob(dir: &Path, include: &[String], exclude: &[String]) -> anyhow::Result<Vec<String>> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type()?.is_dir() {
                if !e.path().join("BUCK").exists() {
                    walk(&e.path(), &r, out)?;
                }
            } else {
                out.push(r);
            }
        }
        Ok(())
    }
    fn matches(pat: &[&str], path: &[&str]) -> bool {
        match (pat.first(), path.first()) {
            (None, None) => true,
            (Some(&"**"), _) => {
                matches(&pat[1..], path) || (!path.is_empty() && matches(pat, &path[1..]))
            }
            (Some(p), Some(s)) => name_matches(p, s) && matches(&pat[1..], &path[1..]),
            _ => false,
        }
    }
    fn name_matches(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((pre, post)) => {
                s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post)
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, "", &mut all)?;
    let hit = |pats: &[String], f: &str| {
        pats.iter().any(|p| {
            matches(
                &p.split('/').collect::<Vec<_>>(),
                &f.split('/').collect::<Vec<_>>(),
            )
        })
    };
    let mut out: Vec<String> = all
        .into_iter()
        .filter(|f| hit(include, f) && !hit(exclude, f))
        .collect();
    out.sort();
    Ok(out)
}
