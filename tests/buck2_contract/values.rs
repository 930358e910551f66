//! The Starlark values of the contract: labels, artifacts, cmd_args, providers,
//! dependencies, rules, attribute specs, transitions, select() and the analysis context.
//!
//! Each value follows Buck2's own behaviour where rules_ko can observe it (names, fields,
//! errors); what Buck2 forbids is refused here with an error naming the Buck2 rule.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use allocative::Allocative;
use anyhow::{anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::collections::{SmallMap, StarlarkHasher};
use starlark::environment::{Methods, MethodsBuilder};
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::starlark_complex_values;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::typing::{Ty, TyStarlarkValue, TyUser, TyUserFields, TyUserParams};
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::tuple::TupleRef;
use starlark::values::typing::{TypeCompiled, TypeInstanceId};
use starlark::values::{
    Coerce, Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, StarlarkValue, Trace,
    Value, ValueLike, starlark_value,
};

pub fn err(e: anyhow::Error) -> starlark::Error {
    starlark::Error::new_other(e)
}

// ---------------------------------------------------------------------------------------
// Labels

/// A target: `cell//package:name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Allocative)]
pub struct TargetLabel {
    pub cell: String,
    pub package: String,
    pub name: String,
}

impl fmt::Display for TargetLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}//{}:{}", self.cell, self.package, self.name)
    }
}

impl TargetLabel {
    /// Parses `label` as written in `cell`'s package `package`: `:x`, `//p:x`, `c//p:x`,
    /// `@c//p:x`, or `//p` (the target named after the package's last directory).
    pub fn parse(label: &str, cell: &str, package: &str) -> anyhow::Result<TargetLabel> {
        if let Some(name) = label.strip_prefix(':') {
            return Ok(TargetLabel {
                cell: cell.into(),
                package: package.into(),
                name: name.into(),
            });
        }
        let label = label.strip_prefix('@').unwrap_or(label);
        let Some((c, rest)) = label.split_once("//") else {
            bail!(
                "{label:?} is not a target label: expected :NAME, //PACKAGE:NAME or CELL//PACKAGE:NAME"
            );
        };
        let c = if c.is_empty() { cell } else { c };
        let (p, n) = match rest.split_once(':') {
            Some((p, n)) => (p.to_string(), n.to_string()),
            None => (
                rest.to_string(),
                rest.rsplit('/').next().unwrap_or("").to_string(),
            ),
        };
        if n.is_empty() {
            bail!("{label:?} is not a target label: it names no target");
        }
        Ok(TargetLabel {
            cell: c.into(),
            package: p,
            name: n,
        })
    }
}

/// `ctx.label`, `dep.label`, `artifact.owner`: a target label, configured or not.
#[derive(Clone, Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct LabelValue {
    pub target: TargetLabel,
    pub config: Option<String>,
    /// `label[sub]`: a sub-target (e.g. a value of a `constraint()`).
    pub sub: Option<String>,
}
starlark_simple_value!(LabelValue);

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)?;
        if let Some(s) = &self.sub {
            write!(f, "[{s}]")?;
        }
        if let Some(c) = &self.config {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

/// Splits `label[sub]` into the label and the sub-target.
pub fn split_sub_target(label: &str) -> (&str, Option<&str>) {
    match (label.strip_suffix(']'), label.find('[')) {
        (Some(l), Some(i)) => (&label[..i], Some(&l[i + 1..])),
        _ => (label, None),
    }
}

#[starlark_module]
fn label_methods(builder: &mut MethodsBuilder) {
    #[starlark(attribute)]
    fn name(this: &LabelValue) -> anyhow::Result<String> {
        Ok(this.target.name.clone())
    }
    #[starlark(attribute)]
    fn package(this: &LabelValue) -> anyhow::Result<String> {
        Ok(this.target.package.clone())
    }
    #[starlark(attribute)]
    fn cell(this: &LabelValue) -> anyhow::Result<String> {
        Ok(this.target.cell.clone())
    }
    fn raw_target(this: &LabelValue) -> anyhow::Result<LabelValue> {
        Ok(LabelValue {
            target: this.target.clone(),
            config: None,
            sub: None,
        })
    }
    fn with_sub_target(
        this: &LabelValue,
        #[starlark(require = pos)] name: &str,
    ) -> anyhow::Result<LabelValue> {
        Ok(LabelValue {
            target: this.target.clone(),
            config: this.config.clone(),
            sub: Some(name.to_string()),
        })
    }
}
starlark::methods_static!(LABEL_METHODS = label_methods);

#[starlark_value(type = "label")]
impl<'v> StarlarkValue<'v> for LabelValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(LABEL_METHODS.methods())
    }
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<LabelValue>().is_some_and(|o| {
            o.target == self.target && o.config == self.config && o.sub == self.sub
        }))
    }
    fn write_hash(&self, hasher: &mut StarlarkHasher) -> starlark::Result<()> {
        use std::hash::Hash;
        self.to_string().hash(hasher);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Artifacts

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A file: a source, or an output declared by a target's analysis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Allocative)]
pub struct ArtifactData {
    /// Relative to the project root (buck-out/... for outputs).
    pub path: String,
    pub short_path: String,
    /// The declaring target and configuration, for outputs.
    pub owner: Option<(TargetLabel, String)>,
    pub is_dir: bool,
}

impl ArtifactData {
    pub fn is_source(&self) -> bool {
        self.owner.is_none()
    }
}

#[derive(Clone, Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Artifact(pub ArtifactData);
starlark_simple_value!(Artifact);

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.owner {
            None => write!(f, "<source {}>", self.0.path),
            Some((t, _)) => write!(f, "<build artifact {} bound to {t}>", self.0.short_path),
        }
    }
}

#[starlark_module]
fn artifact_methods(builder: &mut MethodsBuilder) {
    #[starlark(attribute)]
    fn basename(this: &Artifact) -> anyhow::Result<String> {
        Ok(this
            .0
            .short_path
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string())
    }
    #[starlark(attribute)]
    fn extension(this: &Artifact) -> anyhow::Result<String> {
        let base = this.0.short_path.rsplit('/').next().unwrap_or("");
        Ok(base
            .rfind('.')
            .map(|i| base[i..].to_string())
            .unwrap_or_default())
    }
    #[starlark(attribute)]
    fn short_path(this: &Artifact) -> anyhow::Result<String> {
        Ok(this.0.short_path.clone())
    }
    #[starlark(attribute)]
    fn is_source(this: &Artifact) -> anyhow::Result<bool> {
        Ok(this.0.is_source())
    }
    #[starlark(attribute)]
    fn owner(this: &Artifact) -> anyhow::Result<NoneOr<LabelValue>> {
        Ok(match &this.0.owner {
            Some((t, c)) => NoneOr::Other(LabelValue {
                target: t.clone(),
                config: Some(c.clone()),
                sub: None,
            }),
            None => NoneOr::None,
        })
    }
    /// Buck2 artifacts have no path at analysis time: refused as Buck2 does.
    #[starlark(attribute)]
    fn path(this: &Artifact) -> anyhow::Result<NoneType> {
        Err(anyhow!(
            "Object of type `artifact` has no attribute `path` ({this}): Buck2 artifacts have no path at analysis time; pass the artifact to cmd_args()"
        ))
    }
    fn as_output(this: &Artifact) -> anyhow::Result<OutputArtifact> {
        if this.0.is_source() {
            bail!(
                "as_output(): {this} is a source artifact; only declared outputs can be bound to an action"
            );
        }
        Ok(OutputArtifact(this.0.clone()))
    }
}
starlark::methods_static!(ARTIFACT_METHODS = artifact_methods);

#[starlark_value(type = "artifact")]
impl<'v> StarlarkValue<'v> for Artifact {
    fn get_methods() -> Option<&'static Methods> {
        Some(ARTIFACT_METHODS.methods())
    }
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<Artifact>()
            .is_some_and(|o| o.0 == self.0))
    }
    fn write_hash(&self, hasher: &mut StarlarkHasher) -> starlark::Result<()> {
        use std::hash::Hash;
        self.0.path.hash(hasher);
        Ok(())
    }
}

/// `artifact.as_output()`: an artifact an action binds.
#[derive(Clone, Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct OutputArtifact(pub ArtifactData);
starlark_simple_value!(OutputArtifact);

impl fmt::Display for OutputArtifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<output artifact {}>", self.0.short_path)
    }
}

#[starlark_value(type = "output_artifact")]
impl<'v> StarlarkValue<'v> for OutputArtifact {}

// ---------------------------------------------------------------------------------------
// cmd_args

#[derive(Clone, Debug, Allocative)]
pub enum CmdItem {
    Str(String),
    Input(ArtifactData),
    Output(ArtifactData),
    Args(CmdArgs),
}

/// `cmd_args(...)`: Rust data only (artifacts are plain data here), so it is a simple value.
#[derive(Clone, Debug, Default, ProvidesStaticType, NoSerialize, Allocative)]
pub struct CmdArgs {
    pub items: Vec<CmdItem>,
    pub hidden: Vec<CmdItem>,
    pub delimiter: Option<String>,
    pub format: Option<String>,
    pub prepend: Option<String>,
    pub ignore_artifacts: bool,
}
starlark_simple_value!(CmdArgs);

impl fmt::Display for CmdArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cmd_args({})", self.render(None).join(" "))
    }
}

impl CmdArgs {
    /// Adds a Starlark value as Buck2's cmd_args does: strings, artifacts, outputs,
    /// cmd_args, RunInfo and lists of those.
    pub fn push_value<'v>(items: &mut Vec<CmdItem>, v: Value<'v>) -> anyhow::Result<()> {
        if let Some(s) = v.unpack_str() {
            items.push(CmdItem::Str(s.to_string()));
        } else if let Some(a) = v.downcast_ref::<Artifact>() {
            items.push(CmdItem::Input(a.0.clone()));
        } else if let Some(o) = v.downcast_ref::<OutputArtifact>() {
            items.push(CmdItem::Output(o.0.clone()));
        } else if let Some(c) = v.downcast_ref::<CmdArgs>() {
            items.push(CmdItem::Args(c.clone()));
        } else if let Some(l) = ListRef::from_value(v) {
            for x in l.iter() {
                Self::push_value(items, x)?;
            }
        } else if let Some(t) = TupleRef::from_value(v) {
            for x in t.iter() {
                Self::push_value(items, x)?;
            }
        } else if let Some((p, fields)) = provider_instance(v) {
            if p.name() != "RunInfo" {
                bail!(
                    "cmd_args: a {} provider is not a command line; expected str, artifact, cmd_args or RunInfo",
                    p.name()
                );
            }
            let args = fields
                .iter()
                .find(|(k, _)| k == "args")
                .map(|(_, v)| *v)
                .unwrap();
            Self::push_value(items, args)?;
        } else {
            bail!(
                "cmd_args: expected str, artifact, output artifact, cmd_args, RunInfo or a list of them, found {} `{}`",
                v.get_type(),
                v.to_repr()
            );
        }
        Ok(())
    }

    /// The arguments; artifact paths are relative to the project root, or under `root`.
    pub fn render(&self, root: Option<&std::path::Path>) -> Vec<String> {
        let path = |p: &str| match root {
            Some(r) => r.join(p).display().to_string(),
            None => p.to_string(),
        };
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                CmdItem::Str(s) => out.push(s.clone()),
                CmdItem::Input(a) | CmdItem::Output(a) => out.push(path(&a.path)),
                CmdItem::Args(c) => out.extend(c.render(root)),
            }
        }
        let mut out: Vec<String> = out
            .into_iter()
            .map(|s| match &self.format {
                Some(f) => f.replace("{}", &s),
                None => s,
            })
            .collect();
        if let Some(p) = &self.prepend {
            out = out.into_iter().flat_map(|s| [p.clone(), s]).collect();
        }
        match &self.delimiter {
            Some(d) if !out.is_empty() => vec![out.join(d)],
            _ => out,
        }
    }

    fn walk(
        items: &[CmdItem],
        inputs: &mut Vec<ArtifactData>,
        outputs: &mut Vec<ArtifactData>,
        ignore: bool,
    ) {
        for item in items {
            match item {
                CmdItem::Str(_) => {}
                CmdItem::Input(a) if !ignore => inputs.push(a.clone()),
                CmdItem::Input(_) => {}
                CmdItem::Output(a) => outputs.push(a.clone()),
                CmdItem::Args(c) => {
                    let ignore = ignore || c.ignore_artifacts;
                    Self::walk(&c.items, inputs, outputs, ignore);
                    Self::walk(&c.hidden, inputs, outputs, ignore);
                }
            }
        }
    }

    /// (inputs, outputs): the artifacts the command reads (hidden ones too, but not those
    /// under ignore_artifacts) and the outputs it binds.
    pub fn artifacts(&self) -> (Vec<ArtifactData>, Vec<ArtifactData>) {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        Self::walk(
            &[CmdItem::Args(self.clone())],
            &mut inputs,
            &mut outputs,
            false,
        );
        (inputs, outputs)
    }
}

#[starlark_value(type = "cmd_args")]
impl<'v> StarlarkValue<'v> for CmdArgs {}

// ---------------------------------------------------------------------------------------
// Providers

/// A provider field's default, as Rust data so the provider stays a simple value.
#[derive(Clone, Debug, Allocative)]
pub enum Default {
    None,
    Str(String),
    EmptyList,
    EmptyDict,
    Bool(bool),
    Int(i64),
}

impl Default {
    fn from_value(v: Value) -> anyhow::Result<Default> {
        if v.is_none() {
            Ok(Default::None)
        } else if let Some(s) = v.unpack_str() {
            Ok(Default::Str(s.to_string()))
        } else if let Some(b) = v.unpack_bool() {
            Ok(Default::Bool(b))
        } else if let Some(i) = v.unpack_i32() {
            Ok(Default::Int(i as i64))
        } else if ListRef::from_value(v).is_some_and(|l| l.is_empty()) {
            Ok(Default::EmptyList)
        } else if DictRef::from_value(v).is_some_and(|d| d.is_empty()) {
            Ok(Default::EmptyDict)
        } else {
            bail!(
                "provider_field default {}: the contract records None, str, bool, int, [] and {{}}",
                v.to_repr()
            )
        }
    }

    fn alloc<'v>(&self, heap: Heap<'v>) -> Value<'v> {
        match self {
            Default::None => Value::new_none(),
            Default::Str(s) => heap.alloc(s.as_str()),
            Default::EmptyList => heap.alloc(Vec::<Value>::new()),
            Default::EmptyDict => {
                heap.alloc(starlark::values::dict::AllocDict(
                    Vec::<(Value, Value)>::new(),
                ))
            }
            Default::Bool(b) => Value::new_bool(*b),
            Default::Int(i) => heap.alloc(*i as i32),
        }
    }
}

/// `provider_field(T, default = ...)`. The type lives in the frozen heap of the module
/// that declares the provider, as the provider itself does.
#[derive(Clone, Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ProviderField {
    pub default: Option<Default>,
    #[allocative(skip)]
    pub ty: Option<TypeCompiled<FrozenValue>>,
}
starlark_simple_value!(ProviderField);

impl fmt::Display for ProviderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider_field()")
    }
}

#[starlark_value(type = "provider_field")]
impl<'v> StarlarkValue<'v> for ProviderField {}

impl ProviderField {
    pub fn new(
        default: Option<Value>,
        ty: Option<TypeCompiled<FrozenValue>>,
    ) -> anyhow::Result<ProviderField> {
        Ok(ProviderField {
            default: default.map(Default::from_value).transpose()?,
            ty,
        })
    }
}

/// `provider(fields = ...)` and the built-in providers: callable, named by the variable it
/// is assigned to, and usable as a type (`-> list[KoImageInfo]`).
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ProviderCallable {
    pub id: u64,
    #[allocative(skip)]
    ty_id: TypeInstanceId,
    pub fields: Vec<(String, Option<Default>)>,
    /// Each field's type, when declared with provider_field(T).
    #[allocative(skip)]
    pub types: Vec<Option<TypeCompiled<FrozenValue>>>,
    #[allocative(skip)]
    name: OnceLock<String>,
}
starlark_simple_value!(ProviderCallable);

impl ProviderCallable {
    pub fn new(
        fields: Vec<(String, Option<Default>)>,
        types: Vec<Option<TypeCompiled<FrozenValue>>>,
        name: Option<&str>,
    ) -> ProviderCallable {
        let p = ProviderCallable {
            id: next_id(),
            ty_id: TypeInstanceId::r#gen(),
            fields,
            types,
            name: OnceLock::new(),
        };
        if let Some(n) = name {
            let _ = p.name.set(n.to_string());
        }
        p
    }

    pub fn name(&self) -> &str {
        self.name
            .get()
            .map(|s| s.as_str())
            .unwrap_or("<anonymous provider>")
    }
}

impl fmt::Display for ProviderCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

#[starlark_value(type = "provider_callable")]
impl<'v> StarlarkValue<'v> for ProviderCallable {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn invoke(
        &self,
        me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let heap = eval.heap();
        args.no_positional_args(heap)?;
        let mut given: SmallMap<String, Value<'v>> = SmallMap::new();
        for (k, v) in args.names_map()? {
            given.insert(k.as_str().to_string(), v);
        }
        let fields = build_fields(self, &mut given, heap).map_err(err)?;
        if let Some(k) = given.keys().next() {
            return Err(err(anyhow!(
                "{}: unexpected field `{k}`; its fields are {}",
                self.name(),
                self.fields
                    .iter()
                    .map(|(f, _)| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(heap.alloc(ProviderInstance {
            provider: me,
            fields,
        }))
    }

    fn eval_type(&self) -> Option<Ty> {
        let ty = TyUser::new(
            self.name().to_owned(),
            TyStarlarkValue::new::<FrozenProviderInstance>(),
            self.ty_id,
            TyUserParams {
                fields: TyUserFields::unknown(),
                ..TyUserParams::default()
            },
        )
        .ok()?;
        Some(Ty::custom(ty))
    }
}

/// The fields of a new provider instance, with the built-ins' own conversions.
fn build_fields<'v>(
    p: &ProviderCallable,
    given: &mut SmallMap<String, Value<'v>>,
    heap: Heap<'v>,
) -> anyhow::Result<Vec<(String, Value<'v>)>> {
    match p.name() {
        "DefaultInfo" => {
            let one = given.shift_remove("default_output");
            let many = given.shift_remove("default_outputs");
            let default_outputs = match (one, many) {
                (Some(_), Some(_)) => {
                    bail!("DefaultInfo: give default_output or default_outputs, not both")
                }
                (Some(o), None) if !o.is_none() => {
                    artifact_of(o, "DefaultInfo(default_output)")?;
                    heap.alloc(vec![o])
                }
                (None, Some(m)) => {
                    let list = ListRef::from_value(m).ok_or_else(|| {
                        anyhow!("DefaultInfo(default_outputs): expected a list of artifacts")
                    })?;
                    for a in list.iter() {
                        artifact_of(a, "DefaultInfo(default_outputs)")?;
                    }
                    m
                }
                _ => heap.alloc(Vec::<Value>::new()),
            };
            let other = given
                .shift_remove("other_outputs")
                .unwrap_or_else(|| heap.alloc(Vec::<Value>::new()));
            let subs = given.shift_remove("sub_targets").unwrap_or_else(|| {
                heap.alloc(starlark::values::dict::AllocDict(
                    Vec::<(Value, Value)>::new(),
                ))
            });
            if let Some(d) = DictRef::from_value(subs) {
                for (k, v) in d.iter() {
                    let ok = k.unpack_str().is_some()
                        && ListRef::from_value(v)
                            .is_some_and(|l| l.iter().all(|p| provider_instance(p).is_some()));
                    if !ok {
                        bail!(
                            "DefaultInfo(sub_targets): expected a dict of name -> list of providers, found {} -> {}",
                            k.to_repr(),
                            v.to_repr()
                        );
                    }
                }
            }
            Ok(vec![
                ("default_outputs".into(), default_outputs),
                ("other_outputs".into(), other),
                ("sub_targets".into(), subs),
            ])
        }
        "RunInfo" => {
            let mut c = CmdArgs::default();
            if let Some(a) = given.shift_remove("args") {
                CmdArgs::push_value(&mut c.items, a)?;
            }
            Ok(vec![("args".into(), heap.alloc(c))])
        }
        _ => {
            let mut out = Vec::new();
            for (i, (f, d)) in p.fields.iter().enumerate() {
                let v = match (given.shift_remove(f), d) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.alloc(heap),
                    (None, None) => bail!("{}: missing field `{f}` (it has no default)", p.name()),
                };
                // Buck2 checks provider fields against their declared types.
                if let Some(Some(ty)) = p.types.get(i).filter(|t| t.is_some_and(|t| !t.matches(v)))
                {
                    bail!(
                        "{}: value `{}` of type `{}` does not match the type `{ty}` of field `{f}`",
                        p.name(),
                        v.to_repr(),
                        v.get_type()
                    );
                }
                out.push((f.clone(), v));
            }
            Ok(out)
        }
    }
}

fn artifact_of<'v>(v: Value<'v>, what: &str) -> anyhow::Result<ArtifactData> {
    match v.downcast_ref::<Artifact>() {
        Some(a) => Ok(a.0.clone()),
        None => bail!(
            "{what}: expected an artifact, found {} `{}`",
            v.get_type(),
            v.to_repr()
        ),
    }
}

#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct ProviderInstanceGen<V> {
    pub provider: V,
    pub fields: Vec<(String, V)>,
}
starlark_complex_value!(pub ProviderInstance);

impl<'v, V: ValueLike<'v>> fmt::Display for ProviderInstanceGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.provider.to_value())?;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i != 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}={}", k, v.to_value().to_repr())?;
        }
        write!(f, ")")
    }
}

#[starlark_value(type = "provider")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderInstanceGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        self.fields
            .iter()
            .find(|(k, _)| k == attribute)
            .map(|(_, v)| v.to_value())
    }
    fn dir_attr(&self) -> Vec<String> {
        self.fields.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// The provider and fields of a provider instance (frozen or not).
pub fn provider_instance<'v>(
    v: Value<'v>,
) -> Option<(&'v ProviderCallable, Vec<(String, Value<'v>)>)> {
    let inst = ProviderInstance::from_value(v)?;
    let p = ProviderCallable::from_value(inst.provider)?;
    Some((
        p,
        inst.fields.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    ))
}

pub fn field<'v>(v: Value<'v>, name: &str) -> Option<Value<'v>> {
    provider_instance(v)?
        .1
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------
// Dependencies

/// A dependency of the analysed target: its label and providers.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct DependencyGen<V> {
    pub label: V,
    pub providers: Vec<V>,
}
starlark_complex_value!(pub Dependency);

impl<'v, V: ValueLike<'v>> fmt::Display for DependencyGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<dependency {}>", self.label.to_value())
    }
}

impl<'v, V: ValueLike<'v>> DependencyGen<V> {
    fn find(&self, provider: Value<'v>) -> starlark::Result<Option<Value<'v>>> {
        let Some(want) = ProviderCallable::from_value(provider) else {
            return Err(err(anyhow!(
                "dependency[...]: expected a provider, found {}",
                provider.to_repr()
            )));
        };
        Ok(self
            .providers
            .iter()
            .map(|p| p.to_value())
            .find(|p| provider_instance(*p).is_some_and(|(pc, _)| pc.id == want.id)))
    }
}

#[starlark_module]
fn dependency_methods(builder: &mut MethodsBuilder) {
    #[starlark(attribute)]
    fn label<'v>(this: Value<'v>) -> anyhow::Result<Value<'v>> {
        Ok(Dependency::from_value(this).unwrap().label)
    }
    #[starlark(attribute)]
    fn providers<'v>(this: Value<'v>) -> anyhow::Result<Vec<Value<'v>>> {
        Ok(Dependency::from_value(this).unwrap().providers.clone())
    }
    fn get<'v>(this: Value<'v>, provider: Value<'v>) -> starlark::Result<Value<'v>> {
        let d = Dependency::from_value(this).unwrap();
        Ok(d.find(provider)?.unwrap_or_else(Value::new_none))
    }
}
starlark::methods_static!(DEPENDENCY_METHODS = dependency_methods);

#[starlark_value(type = "dependency")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for DependencyGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_methods() -> Option<&'static Methods> {
        Some(DEPENDENCY_METHODS.methods())
    }
    fn at(&self, index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        match self.find(index)? {
            Some(v) => Ok(v),
            None => Err(err(anyhow!(
                "dependency `{}` has no provider `{}`",
                self.label.to_value(),
                index
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Attribute values and specs

/// An attribute value as written in a BUCK file (or a default), before configuration.
#[derive(Clone, Debug, PartialEq, Allocative)]
pub enum AttrValue {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<AttrValue>),
    Dict(Vec<(AttrValue, AttrValue)>),
    Select(Vec<(String, AttrValue)>),
}

impl AttrValue {
    pub fn from_value(v: Value) -> anyhow::Result<AttrValue> {
        Ok(if v.is_none() {
            AttrValue::None
        } else if let Some(b) = v.unpack_bool() {
            AttrValue::Bool(b)
        } else if let Some(i) = v.unpack_i32() {
            AttrValue::Int(i as i64)
        } else if let Some(s) = v.unpack_str() {
            AttrValue::Str(s.to_string())
        } else if let Some(l) = ListRef::from_value(v) {
            AttrValue::List(
                l.iter()
                    .map(AttrValue::from_value)
                    .collect::<anyhow::Result<_>>()?,
            )
        } else if let Some(t) = TupleRef::from_value(v) {
            AttrValue::List(
                t.iter()
                    .map(AttrValue::from_value)
                    .collect::<anyhow::Result<_>>()?,
            )
        } else if let Some(d) = DictRef::from_value(v) {
            AttrValue::Dict(
                d.iter()
                    .map(|(k, v)| Ok((AttrValue::from_value(k)?, AttrValue::from_value(v)?)))
                    .collect::<anyhow::Result<_>>()?,
            )
        } else if let Some(s) = v.downcast_ref::<Select>() {
            AttrValue::Select(s.0.clone())
        } else {
            bail!(
                "attribute values are None, bool, int, str, lists, dicts and select(); found {} `{}`",
                v.get_type(),
                v.to_repr()
            )
        })
    }
}

/// `select({...})`: resolved against the configuration when the target is analysed.
#[derive(Clone, Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Select(pub Vec<(String, AttrValue)>);
starlark_simple_value!(Select);

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "select({:?})",
            self.0.iter().map(|(k, _)| k).collect::<Vec<_>>()
        )
    }
}

#[starlark_value(type = "selector")]
impl<'v> StarlarkValue<'v> for Select {}

/// The kinds of attribute the contract records from Buck2's `attrs` module.
#[derive(Clone, Debug, Allocative)]
pub enum AttrKind {
    String,
    Int,
    Bool,
    List(Box<AttrKind>),
    Dict(Box<AttrKind>, Box<AttrKind>),
    Option(Box<AttrKind>),
    Tuple(Vec<AttrKind>),
    Source,
    /// attrs.dep (exec = false) and attrs.exec_dep (exec = true).
    Dep {
        providers: Vec<(u64, String)>,
        exec: bool,
    },
    ToolchainDep {
        providers: Vec<(u64, String)>,
    },
    /// The transition: (module, exported name).
    SplitTransitionDep {
        transition: (String, String),
        providers: Vec<(u64, String)>,
    },
    ConfigurationLabel,
    DefaultOnly(Box<AttrKind>),
}

#[derive(Clone, Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct AttrSpec {
    pub kind: AttrKind,
    pub default: Option<AttrValue>,
}
starlark_simple_value!(AttrSpec);

impl fmt::Display for AttrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attribute({:?})", self.kind)
    }
}

#[starlark_value(type = "attribute")]
impl<'v> StarlarkValue<'v> for AttrSpec {}

// ---------------------------------------------------------------------------------------
// Rules and transitions

#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Rule<'v> {
    pub implementation: Value<'v>,
    #[allocative(skip)]
    #[trace(static)]
    pub attrs: Vec<(String, AttrSpec)>,
    pub is_toolchain_rule: bool,
    pub module: String,
    #[allocative(skip)]
    #[trace(static)]
    pub name: OnceCell<String>,
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenRule {
    pub implementation: FrozenValue,
    #[allocative(skip)]
    pub attrs: Vec<(String, AttrSpec)>,
    pub is_toolchain_rule: bool,
    pub module: String,
    pub name: Option<String>,
}
starlark_complex_values!(Rule);

impl<'v> Freeze for Rule<'v> {
    type Frozen = FrozenRule;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenRule> {
        Ok(FrozenRule {
            implementation: self.implementation.freeze(freezer)?,
            attrs: self.attrs,
            is_toolchain_rule: self.is_toolchain_rule,
            module: self.module,
            name: self.name.into_inner(),
        })
    }
}

impl fmt::Display for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule({})",
            self.name.get().map(|s| s.as_str()).unwrap_or("?")
        )
    }
}

impl fmt::Display for FrozenRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule({})", self.name.as_deref().unwrap_or("?"))
    }
}

/// Internal attributes every Buck2 rule takes.
pub const INTERNAL_ATTRS: &[&str] = &[
    "visibility",
    "within_view",
    "target_compatible_with",
    "compatible_with",
    "exec_compatible_with",
    "default_target_platform",
    "metadata",
    "tests",
    "modifiers",
];

/// One `rule(name = ..., ...)` call in a BUCK file.
#[derive(Clone, Debug)]
pub struct TargetNode {
    pub name: String,
    pub rule_module: String,
    pub rule_name: String,
    pub attrs: BTreeMap<String, AttrValue>,
}

/// What native functions need of the evaluation in progress (`eval.extra`).
#[derive(Debug, Default, ProvidesStaticType)]
pub struct EvalState {
    /// The module being evaluated: `cell//package:file`.
    pub module: String,
    /// For a BUCK file: its package directory on disk, and the targets declared.
    pub package_dir: Option<std::path::PathBuf>,
    pub targets: RefCell<Vec<TargetNode>>,
}

pub fn with_eval_state<R>(eval: &Evaluator, f: impl FnOnce(&EvalState) -> R) -> Option<R> {
    eval.extra
        .and_then(|e| e.downcast_ref::<EvalState>())
        .map(f)
}

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for Rule<'v> {
    type Canonical = FrozenRule;

    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &Arguments<'v, '_>,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        Err(err(anyhow!(
            "rule `{}` is called in the .bzl file that defines it; Buck2 rules are called from BUCK files (or macros they call)",
            self.name.get().map(|s| s.as_str()).unwrap_or("?")
        )))
    }
}

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for FrozenRule {
    type Canonical = FrozenRule;

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let rule = self.name.clone().unwrap_or_default();
        args.no_positional_args(eval.heap())?;
        if with_eval_state(eval, |s| s.package_dir.is_some()) != Some(true) {
            return Err(err(anyhow!("rule `{rule}` called outside a BUCK file")));
        }
        let mut name = None;
        let mut attrs = BTreeMap::new();
        for (k, v) in args.names_map()? {
            let k = k.as_str();
            if k == "name" {
                name = Some(
                    v.unpack_str()
                        .ok_or_else(|| err(anyhow!("{rule}: `name` must be a string")))?
                        .to_string(),
                );
                continue;
            }
            if INTERNAL_ATTRS.contains(&k) {
                continue;
            }
            let Some((_, spec)) = self.attrs.iter().find(|(a, _)| a == k) else {
                return Err(err(anyhow!(
                    "{rule}: unknown attribute `{k}`; it has {}",
                    self.attrs
                        .iter()
                        .map(|(a, _)| a.as_str())
                        .filter(|a| !a.starts_with('_'))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if matches!(spec.kind, AttrKind::DefaultOnly(_)) || k.starts_with('_') {
                return Err(err(anyhow!(
                    "{rule}: attribute `{k}` is default_only and cannot be set"
                )));
            }
            attrs.insert(
                k.to_string(),
                AttrValue::from_value(v)
                    .map_err(|e| err(anyhow!("{rule}: attribute `{k}`: {e}")))?,
            );
        }
        let name = name.ok_or_else(|| err(anyhow!("{rule}: missing `name`")))?;
        for (a, spec) in &self.attrs {
            if spec.default.is_none() && !attrs.contains_key(a) {
                return Err(err(anyhow!(
                    "{rule} `{name}`: missing value for mandatory attribute `{a}` (it has no default)"
                )));
            }
        }
        let node = TargetNode {
            name: name.clone(),
            rule_module: self.module.clone(),
            rule_name: rule,
            attrs,
        };
        let added = with_eval_state(eval, |s| {
            let mut targets = s.targets.borrow_mut();
            if targets.iter().any(|t| t.name == name) {
                return false;
            }
            targets.push(node);
            true
        });
        if added != Some(true) {
            return Err(err(anyhow!(
                "target `{name}` declared twice in this package"
            )));
        }
        Ok(Value::new_none())
    }
}

#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Transition<'v> {
    pub implementation: Value<'v>,
    #[allocative(skip)]
    #[trace(static)]
    pub refs: Vec<(String, String)>,
    pub attrs: Vec<String>,
    pub split: bool,
    pub module: String,
    #[allocative(skip)]
    #[trace(static)]
    pub name: OnceCell<String>,
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenTransition {
    pub implementation: FrozenValue,
    pub refs: Vec<(String, String)>,
    pub attrs: Vec<String>,
    pub split: bool,
    pub module: String,
    pub name: Option<String>,
}
starlark_complex_values!(Transition);

impl<'v> Freeze for Transition<'v> {
    type Frozen = FrozenTransition;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenTransition> {
        Ok(FrozenTransition {
            implementation: self.implementation.freeze(freezer)?,
            refs: self.refs,
            attrs: self.attrs,
            split: self.split,
            module: self.module,
            name: self.name.into_inner(),
        })
    }
}

impl fmt::Display for Transition<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transition({})",
            self.name.get().map(|s| s.as_str()).unwrap_or("?")
        )
    }
}

impl fmt::Display for FrozenTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transition({})", self.name.as_deref().unwrap_or("?"))
    }
}

#[starlark_value(type = "transition")]
impl<'v> StarlarkValue<'v> for Transition<'v> {
    type Canonical = FrozenTransition;
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }
}

#[starlark_value(type = "transition")]
impl<'v> StarlarkValue<'v> for FrozenTransition {
    type Canonical = FrozenTransition;
}
