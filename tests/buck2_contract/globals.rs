//! The globals of Buck2's `.bzl` and BUCK files that the contract records: `rule`,
//! `provider`, `provider_field`, `attrs.*`, `transition`, `cmd_args`, `select`, `glob`, the
//! built-in providers, and the types used in annotations.
#![allow(non_upper_case_globals)]

use std::cell::OnceCell;

use allocative::Allocative;
use anyhow::{anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension, Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::syntax::{Dialect, DialectTypes};
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::starlark_value_as_type::StarlarkValueAsType;
use starlark::values::typing::TypeCompiled;
use starlark::values::{NoSerialize, StarlarkValue, Value, ValueLike, starlark_value};

use super::values::*;

/// Buck2's dialect: types, f-strings, keyword-only arguments, top-level statements, and no
/// re-export of loaded names.
pub fn dialect() -> Dialect {
    Dialect {
        enable_def: true,
        enable_lambda: true,
        enable_load: true,
        enable_keyword_only_arguments: true,
        enable_positional_only_arguments: false,
        enable_types: DialectTypes::Enable,
        enable_load_reexport: false,
        enable_top_level_stmt: true,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

pub fn globals() -> Globals {
    use LibraryExtension::*;
    GlobalsBuilder::extended_by(&[
        StructType,
        RecordType,
        EnumType,
        NamespaceType,
        Map,
        Filter,
        Partial,
        Debug,
        Print,
        Json,
        Typing,
        SetType,
    ])
    .with(natives)
    .with(|b: &mut GlobalsBuilder| {
        for (name, fields) in builtin_providers() {
            let fields: Vec<_> = fields
                .into_iter()
                .map(|f| (f.to_string(), Some(Default::None)))
                .collect();
            let types = vec![None; fields.len()];
            b.set(name, ProviderCallable::new(fields, types, Some(name)));
        }
    })
    .build()
}

/// `attrs`: the attribute constructors, as methods of one value.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct AttrsModule;
starlark_simple_value!(AttrsModule);

impl std::fmt::Display for AttrsModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attrs")
    }
}

fn spec(kind: AttrKind, default: Option<Value>) -> anyhow::Result<AttrSpec> {
    Ok(AttrSpec {
        kind,
        default: default.map(AttrValue::from_value).transpose()?,
    })
}

fn inner(v: Value, what: &str) -> anyhow::Result<AttrKind> {
    match v.downcast_ref::<AttrSpec>() {
        Some(s) => Ok(s.kind.clone()),
        None => bail!(
            "attrs.{what}: expected an attribute (attrs.string(), ...), found {}",
            v.to_repr()
        ),
    }
}

fn providers_of(v: Option<UnpackListOrTuple<Value>>) -> anyhow::Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    for p in v.map(|l| l.items).unwrap_or_default() {
        let Some(pc) = p.downcast_ref::<ProviderCallable>() else {
            bail!(
                "providers = [...]: expected providers, found {}",
                p.to_repr()
            );
        };
        out.push((pc.id, pc.name().to_string()));
    }
    Ok(out)
}

#[starlark_module]
fn attrs_methods(builder: &mut MethodsBuilder) {
    fn string<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(AttrKind::String, default)
    }
    fn int<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(AttrKind::Int, default)
    }
    fn bool<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(AttrKind::Bool, default)
    }
    fn list<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] item: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(AttrKind::List(Box::new(inner(item, "list")?)), default)
    }
    fn dict<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] key: Value<'v>,
        #[starlark(require = pos)] value: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(
            AttrKind::Dict(
                Box::new(inner(key, "dict")?),
                Box::new(inner(value, "dict")?),
            ),
            default,
        )
    }
    fn option<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] item: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(AttrKind::Option(Box::new(inner(item, "option")?)), default)
    }
    fn tuple<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(args)] items: UnpackListOrTuple<Value<'v>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        let kinds = items
            .items
            .iter()
            .map(|i| inner(*i, "tuple"))
            .collect::<anyhow::Result<_>>()?;
        spec(AttrKind::Tuple(kinds), default)
    }
    fn source<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named, default = false)] allow_directory: bool,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = (doc, allow_directory);
        spec(AttrKind::Source, default)
    }
    fn dep<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] providers: Option<UnpackListOrTuple<Value<'v>>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(
            AttrKind::Dep {
                providers: providers_of(providers)?,
                exec: false,
            },
            default,
        )
    }
    fn exec_dep<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] providers: Option<UnpackListOrTuple<Value<'v>>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(
            AttrKind::Dep {
                providers: providers_of(providers)?,
                exec: true,
            },
            default,
        )
    }
    fn toolchain_dep<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] providers: Option<UnpackListOrTuple<Value<'v>>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(
            AttrKind::ToolchainDep {
                providers: providers_of(providers)?,
            },
            default,
        )
    }
    fn split_transition_dep<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] cfg: Value<'v>,
        #[starlark(require = named)] providers: Option<UnpackListOrTuple<Value<'v>>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        let (split, name, module) = if let Some(t) = cfg.downcast_ref::<Transition>() {
            (t.split, t.name.get().cloned(), t.module.clone())
        } else if let Some(t) = cfg.downcast_ref::<FrozenTransition>() {
            (t.split, t.name.clone(), t.module.clone())
        } else {
            bail!(
                "attrs.split_transition_dep(cfg = ...): expected a transition, found {}",
                cfg.to_repr()
            )
        };
        if !split {
            bail!(
                "attrs.split_transition_dep(cfg = ...): the transition is not a split transition (split = True)"
            );
        }
        let name = name.ok_or_else(|| {
            anyhow!("attrs.split_transition_dep: the transition must be assigned to a global first")
        })?;
        spec(
            AttrKind::SplitTransitionDep {
                transition: (module, name),
                providers: providers_of(providers)?,
            },
            default,
        )
    }
    fn configuration_label<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let _ = doc;
        spec(AttrKind::ConfigurationLabel, default)
    }
    fn default_only<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] item: Value<'v>,
    ) -> anyhow::Result<AttrSpec> {
        let s = item
            .downcast_ref::<AttrSpec>()
            .ok_or_else(|| anyhow!("attrs.default_only: expected an attribute"))?;
        if s.default.is_none() {
            bail!("attrs.default_only: the attribute needs a default");
        }
        Ok(AttrSpec {
            kind: AttrKind::DefaultOnly(Box::new(s.kind.clone())),
            default: s.default.clone(),
        })
    }
}
starlark::methods_static!(ATTRS_METHODS = attrs_methods);

#[starlark_value(type = "attrs")]
impl<'v> StarlarkValue<'v> for AttrsModule {
    fn get_methods() -> Option<&'static Methods> {
        Some(ATTRS_METHODS.methods())
    }
}

fn current_module(eval: &Evaluator) -> String {
    with_eval_state(eval, |s| s.module.clone()).unwrap_or_default()
}

#[starlark_module]
fn natives(builder: &mut GlobalsBuilder) {
    const Provider: StarlarkValueAsType<FrozenProviderInstance> = StarlarkValueAsType::new();
    const AnalysisContext: StarlarkValueAsType<super::engine::Ctx<'static>> =
        StarlarkValueAsType::new();
    const Artifact: StarlarkValueAsType<Artifact> = StarlarkValueAsType::new();
    const OutputArtifact: StarlarkValueAsType<OutputArtifact> = StarlarkValueAsType::new();
    const Dependency: StarlarkValueAsType<FrozenDependency> = StarlarkValueAsType::new();
    const Label: StarlarkValueAsType<LabelValue> = StarlarkValueAsType::new();
    const attrs: AttrsModule = AttrsModule;

    fn provider<'v>(
        #[starlark(require = named)] fields: Value<'v>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<ProviderCallable> {
        let _ = doc;
        let mut out = Vec::new();
        let mut types = Vec::new();
        if let Some(d) = DictRef::from_value(fields) {
            for (k, v) in d.iter() {
                let name = k
                    .unpack_str()
                    .ok_or_else(|| anyhow!("provider(fields = {{...}}): keys are field names"))?;
                let f = v
                    .downcast_ref::<ProviderField>()
                    .ok_or_else(|| anyhow!("provider(fields = {{...}}): field `{name}`: expected provider_field(...), found {}", v.to_repr()))?;
                out.push((name.to_string(), f.default.clone()));
                types.push(f.ty);
            }
        } else if let Some(l) = ListRef::from_value(fields) {
            for f in l.iter() {
                out.push((
                    f.unpack_str()
                        .ok_or_else(|| anyhow!("provider(fields = [...]): names"))?
                        .to_string(),
                    Some(Default::None),
                ));
                types.push(None);
            }
        } else {
            bail!("provider(fields = ...): expected a list of names or a dict of provider_field()");
        }
        Ok(ProviderCallable::new(out, types, None))
    }

    fn provider_field<'v>(
        #[starlark(require = pos)] ty: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<ProviderField> {
        let compiled = TypeCompiled::new(ty, eval.heap())?;
        if let Some(d) = default.filter(|d| !compiled.matches(*d)) {
            bail!(
                "provider_field: the default `{}` does not match the type `{compiled}`",
                d.to_repr()
            );
        }
        ProviderField::new(default, Some(compiled.to_frozen(eval.frozen_heap())))
    }

    fn rule<'v>(
        #[starlark(require = named)] r#impl: Value<'v>,
        #[starlark(require = named)] attrs: SmallMap<String, Value<'v>>,
        #[starlark(require = named)] cfg: Option<Value<'v>>,
        #[starlark(require = named, default = false)] is_toolchain_rule: bool,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Rule<'v>> {
        let _ = doc;
        if cfg.is_some() {
            bail!("rule(cfg = ...): incoming transitions are not in the contract");
        }
        let mut specs = Vec::new();
        for (k, v) in attrs {
            let s = v.downcast_ref::<AttrSpec>().ok_or_else(|| {
                anyhow!("rule(attrs): `{k}` is not an attribute: {}", v.to_repr())
            })?;
            if k == "name" || INTERNAL_ATTRS.contains(&k.as_str()) {
                bail!("rule(attrs): `{k}` is an attribute Buck2 defines itself");
            }
            specs.push((k, s.clone()));
        }
        Ok(Rule {
            implementation: r#impl,
            attrs: specs,
            is_toolchain_rule,
            module: current_module(eval),
            name: OnceCell::new(),
        })
    }

    fn transition<'v>(
        #[starlark(require = named)] r#impl: Value<'v>,
        #[starlark(require = named)] refs: SmallMap<String, String>,
        #[starlark(require = named)] attrs: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named, default = false)] split: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Transition<'v>> {
        Ok(Transition {
            implementation: r#impl,
            refs: refs.into_iter().collect(),
            attrs: attrs.map(|a| a.items).unwrap_or_default(),
            split,
            module: current_module(eval),
            name: OnceCell::new(),
        })
    }

    #[starlark(as_type = CmdArgs)]
    fn cmd_args<'v>(
        #[starlark(args)] args: UnpackListOrTuple<Value<'v>>,
        #[starlark(require = named)] hidden: Option<Value<'v>>,
        #[starlark(require = named)] delimiter: Option<&str>,
        #[starlark(require = named)] format: Option<&str>,
        #[starlark(require = named)] prepend: Option<&str>,
        #[starlark(require = named, default = false)] ignore_artifacts: bool,
    ) -> anyhow::Result<CmdArgs> {
        let mut c = CmdArgs {
            delimiter: delimiter.map(String::from),
            format: format.map(String::from),
            prepend: prepend.map(String::from),
            ignore_artifacts,
            ..CmdArgs::default()
        };
        for a in args.items {
            CmdArgs::push_value(&mut c.items, a)?;
        }
        if let Some(h) = hidden {
            CmdArgs::push_value(&mut c.hidden, h)?;
        }
        Ok(c)
    }

    fn select<'v>(#[starlark(require = pos)] branches: Value<'v>) -> anyhow::Result<Select> {
        let d = DictRef::from_value(branches)
            .ok_or_else(|| anyhow!("select(): expected a dict of constraint label -> value"))?;
        let mut out = Vec::new();
        for (k, v) in d.iter() {
            let key = k
                .unpack_str()
                .ok_or_else(|| anyhow!("select(): keys are labels"))?;
            out.push((key.to_string(), AttrValue::from_value(v)?));
        }
        Ok(Select(out))
    }

    fn glob<'v>(
        #[starlark(require = pos)] include: UnpackListOrTuple<String>,
        #[starlark(require = named)] exclude: Option<UnpackListOrTuple<String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<String>> {
        let dir = with_eval_state(eval, |s| s.package_dir.clone())
            .flatten()
            .ok_or_else(|| anyhow!("glob() is only available in BUCK files"))?;
        super::engine::glob(
            &dir,
            &include.items,
            &exclude.map(|e| e.items).unwrap_or_default(),
        )
    }

    fn package_name<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        let m = current_module(eval);
        Ok(m.split_once("//")
            .map(|(_, r)| r.rsplit_once(':').map(|(p, _)| p).unwrap_or(r))
            .unwrap_or("")
            .to_string())
    }
}

/// The built-in providers, allocated once per globals (each with its own identity).
pub fn builtin_providers() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "DefaultInfo",
            vec![
                "default_output",
                "default_outputs",
                "other_outputs",
                "sub_targets",
            ],
        ),
        ("RunInfo", vec!["args"]),
        ("PlatformInfo", vec!["label", "configuration"]),
        ("ConfigurationInfo", vec!["constraints", "values"]),
        ("ConstraintSettingInfo", vec!["label", "default"]),
        ("ConstraintValueInfo", vec!["setting", "label"]),
    ]
}
