//! The trained network in other programs' formats: an ONNX graph (for ONNX Runtime and every
//! other ONNX engine) and a safetensors file in PyTorch's names and layouts, and back from such a
//! safetensors file to `parameters.raw`.
//!
//! Our layouts differ from theirs in two places. Conv weights are `[cout][3][3][cin]` here
//! (OHWI) and OIHW there. fc1's weights are `[fc1][flat]` in both, but our `flat` is pool3's
//! output flattened in HWC order and theirs (ONNX `Flatten`, PyTorch `nn.Flatten` of an NCHW
//! tensor) in CHW order, so fc1's columns are permuted on the way out (and back on the way in)
//! rather than adding a Transpose to the graph: the graph stays the textbook one, the same as a
//! PyTorch export of the module in the README, and the safetensors file loads into that module
//! unchanged.

use crate::config::{Hyper, Shapes, IN_CHANNELS};
use crate::guard::write_atomic;
use prost::Message;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Names of the parameter tensors as a PyTorch module with attributes conv1..3, fc1, fc2 names
/// them in its `state_dict`, in `parameters.raw` order ([`crate::parameters::NAMES`]).
pub const TORCH_NAMES: [&str; 10] = [
    "conv1.weight",
    "conv2.weight",
    "conv3.weight",
    "conv1.bias",
    "conv2.bias",
    "conv3.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
];

/// The graph's opset: the default of PyTorch's ONNX exporter, so that every ONNX Runtime since
/// 1.13 (2022), including its web and mobile builds, runs the file.
pub const OPSET: i64 = 17;
/// The ONNX IR version that goes with opset 17.
const IR_VERSION: i64 = 8;

/// What the ONNX graph's doc string says about its input and output (the README says the same).
pub fn io_doc(image: usize) -> String {
    format!(
        "catdog cat-vs-dog classifier. Input `image`: float32 [N, 3, {image}, {image}], RGB, \
         channels first; each byte of the photo resized to {image}x{image} (squashed, bilinear, as \
         tools/pack does) times 1/255, so values in [0, 1], no mean or std normalisation. \
         Output `p_dog`: float32 [N, 1], the probability that the image shows a dog (a cat \
         below 0.5)."
    )
}

/// The ten tensors of `params` (in `parameters.raw` order and our layouts) in PyTorch's
/// layouts, with their PyTorch shapes: conv weights OIHW, fc1's columns in CHW order, fc2's
/// weight `[1][fc1]`.
pub fn to_torch(shapes: &Shapes, params: &[f32]) -> Vec<(Vec<usize>, Vec<f32>)> {
    let t = split(shapes, params);
    let mut out = Vec::with_capacity(10);
    for (l, c) in shapes.conv.iter().enumerate() {
        let w = t[l];
        let mut o = vec![0.0; w.len()];
        for co in 0..c.cout {
            for k in 0..9 {
                for ci in 0..c.cin {
                    o[(co * c.cin + ci) * 9 + k] = w[(co * 9 + k) * c.cin + ci];
                }
            }
        }
        out.push((vec![c.cout, c.cin, 3, 3], o));
    }
    for (l, c) in shapes.conv.iter().enumerate() {
        out.push((vec![c.cout], t[3 + l].to_vec()));
    }
    let (hw, ch) = pool3(shapes);
    let mut fc1 = vec![0.0; t[6].len()];
    for j in 0..shapes.fc1 {
        let (ours, theirs) = (&t[6][j * shapes.flat..], &mut fc1[j * shapes.flat..]);
        for p in 0..hw {
            for c in 0..ch {
                theirs[c * hw + p] = ours[p * ch + c];
            }
        }
    }
    out.push((vec![shapes.fc1, shapes.flat], fc1));
    out.push((vec![shapes.fc1], t[7].to_vec()));
    out.push((vec![1, shapes.fc1], t[8].to_vec()));
    out.push((vec![1], t[9].to_vec()));
    out
}

/// The inverse of [`to_torch`]: tensors in PyTorch's layouts (file order) into `params`.
fn from_torch(shapes: &Shapes, tensors: &[Vec<f32>], params: &mut [f32]) {
    let lens = shapes.param_lens();
    let mut t: Vec<&mut [f32]> = Vec::with_capacity(10);
    let mut rest = &mut params[..shapes.param_count()];
    for len in lens {
        let (a, b) = rest.split_at_mut(len);
        t.push(a);
        rest = b;
    }
    for (l, c) in shapes.conv.iter().enumerate() {
        let w = &tensors[l];
        for co in 0..c.cout {
            for k in 0..9 {
                for ci in 0..c.cin {
                    t[l][(co * 9 + k) * c.cin + ci] = w[(co * c.cin + ci) * 9 + k];
                }
            }
        }
    }
    let (hw, ch) = pool3(shapes);
    for j in 0..shapes.fc1 {
        let (theirs, ours) = (&tensors[6][j * shapes.flat..], &mut t[6][j * shapes.flat..]);
        for p in 0..hw {
            for c in 0..ch {
                ours[p * ch + c] = theirs[c * hw + p];
            }
        }
    }
    for i in [3, 4, 5, 7, 8, 9] {
        t[i].copy_from_slice(&tensors[i]);
    }
}

/// Pixels and channels of pool3's output (fc1's input).
fn pool3(shapes: &Shapes) -> (usize, usize) {
    let c = shapes.conv[2];
    ((c.h / 2) * (c.w / 2), c.cout)
}

/// `params` cut into its ten tensors (file order).
fn split<'a>(shapes: &Shapes, params: &'a [f32]) -> Vec<&'a [f32]> {
    let mut off = 0;
    shapes
        .param_lens()
        .iter()
        .map(|&len| {
            off += len;
            &params[off - len..off]
        })
        .collect()
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The network as an ONNX model (the bytes of a `.onnx` file): Conv, Relu, MaxPool three times,
/// Flatten, Gemm, Relu, Gemm, Sigmoid; input `image` `[N, 3, S, S]`, output `p_dog` `[N, 1]`.
pub fn onnx_bytes(shapes: &Shapes, params: &[f32]) -> Vec<u8> {
    use onnx::*;
    let image = shapes.conv[0].h;
    let ints = |name: &str, v: &[i64]| AttributeProto {
        name: name.into(),
        r#type: ATTR_INTS,
        ints: v.to_vec(),
        ..Default::default()
    };
    let int = |name: &str, v: i64| AttributeProto {
        name: name.into(),
        r#type: ATTR_INT,
        i: v,
        ..Default::default()
    };
    let node = |op: &str, name: &str, inputs: &[&str], attribute: Vec<AttributeProto>| NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![name.into()],
        name: name.into(),
        op_type: op.into(),
        attribute,
    };
    let mut nodes = Vec::new();
    let mut x = "image".to_string();
    for l in 1..=3 {
        let (w, b) = (format!("conv{l}.weight"), format!("conv{l}.bias"));
        let conv = vec![
            ints("kernel_shape", &[3, 3]),
            ints("pads", &[1, 1, 1, 1]),
            ints("strides", &[1, 1]),
        ];
        nodes.push(node("Conv", &format!("conv{l}"), &[&x, &w, &b], conv));
        nodes.push(node(
            "Relu",
            &format!("relu{l}"),
            &[&format!("conv{l}")],
            vec![],
        ));
        let pool = vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
        nodes.push(node(
            "MaxPool",
            &format!("pool{l}"),
            &[&format!("relu{l}")],
            pool,
        ));
        x = format!("pool{l}");
    }
    nodes.push(node("Flatten", "flatten", &[&x], vec![int("axis", 1)]));
    let gemm = || vec![int("transB", 1)];
    nodes.push(node(
        "Gemm",
        "fc1",
        &["flatten", "fc1.weight", "fc1.bias"],
        gemm(),
    ));
    nodes.push(node("Relu", "relu4", &["fc1"], vec![]));
    nodes.push(node(
        "Gemm",
        "fc2",
        &["relu4", "fc2.weight", "fc2.bias"],
        gemm(),
    ));
    nodes.push(node("Sigmoid", "p_dog", &["fc2"], vec![]));

    let initializer = TORCH_NAMES
        .iter()
        .zip(to_torch(shapes, params))
        .map(|(name, (dims, v))| TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.to_string(),
            raw_data: le_bytes(&v),
        })
        .collect();
    let value = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let n = || Dimension {
        value: Some(DimValue::Param("N".into())),
    };
    let d = |v: usize| Dimension {
        value: Some(DimValue::Value(v as i64)),
    };
    let image_dims = vec![n(), d(IN_CHANNELS), d(image), d(image)];
    let doc = io_doc(image);
    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "catdog".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.clone(),
        graph: Some(GraphProto {
            node: nodes,
            name: "catdog".into(),
            initializer,
            doc_string: doc,
            input: vec![value("image", image_dims)],
            output: vec![value("p_dog", vec![n(), d(1)])],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata(image)
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
    };
    model.encode_to_vec()
}

/// Key-value notes both files carry: what the network takes and says.
fn metadata(image: usize) -> Vec<(String, String)> {
    vec![
        ("producer".into(), "catdog".into()),
        ("image".into(), image.to_string()),
        ("input".into(), "RGB, [N, 3, H, W], byte / 255".into()),
        ("output".into(), "P(dog), [N, 1]".into()),
    ]
}

/// The network as a safetensors file (its bytes): [`TORCH_NAMES`], float32, PyTorch layouts
/// (see [`to_torch`]). The metadata is PyTorch's one entry, `format: pt`, and no more: the
/// safetensors crate writes it from a HashMap, in an order that changes from run to run, and
/// the same network must give the same bytes. The image size follows from fc1's shape.
pub fn safetensors_bytes(shapes: &Shapes, params: &[f32]) -> Result<Vec<u8>, String> {
    let tensors: Vec<(Vec<usize>, Vec<u8>)> = to_torch(shapes, params)
        .into_iter()
        .map(|(dims, v)| (dims, le_bytes(&v)))
        .collect();
    let views = TORCH_NAMES
        .iter()
        .zip(&tensors)
        .map(|(name, (dims, bytes))| {
            TensorView::new(Dtype::F32, dims.clone(), bytes)
                .map(|v| (*name, v))
                .map_err(|e| format!("safetensors: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| format!("safetensors: {e}"))
}

/// A network read from a safetensors file in the layout [`safetensors_bytes`] writes (from
/// here or from PyTorch's `safetensors.torch.save_file(model.state_dict(), ...)` of the README's
/// module): its hyperparameters (image size, widths, fc1, derived from the tensors' shapes) and
/// its parameters in `parameters.raw` order. Anything else is refused with the reason.
pub fn from_safetensors(bytes: &[u8]) -> Result<(Hyper, Vec<f32>), String> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let missing: Vec<&str> = TORCH_NAMES
        .iter()
        .filter(|n| !names.contains(n))
        .copied()
        .collect();
    let extra: Vec<&str> = names
        .iter()
        .filter(|n| !TORCH_NAMES.contains(n))
        .copied()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(format!(
            "not a catdog network: it must hold exactly the tensors {} (missing: {}; not \
             expected: {})",
            TORCH_NAMES.join(", "),
            list_or_none(&missing),
            list_or_none(&extra)
        ));
    }
    let mut tensors = Vec::with_capacity(10);
    let mut dims = Vec::with_capacity(10);
    for name in TORCH_NAMES {
        let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
        if t.dtype() != Dtype::F32 {
            return Err(format!(
                "{name} is {:?}; only float32 (F32) tensors are read",
                t.dtype()
            ));
        }
        let v: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(format!("{name}: value {i} is not a finite number"));
        }
        tensors.push(v);
        dims.push(t.shape().to_vec());
    }
    let hyper = hyper_of(&dims)?;
    let shapes = hyper.shapes()?;
    let mut params = vec![0.0; shapes.param_count()];
    from_torch(&shapes, &tensors, &mut params);
    Ok((hyper, params))
}

fn list_or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The hyperparameters that tensors of these shapes (in [`TORCH_NAMES`] order) belong to, or
/// which shape is wrong.
fn hyper_of(dims: &[Vec<usize>]) -> Result<Hyper, String> {
    let shape = |d: &[usize]| format!("{d:?}");
    let mut widths = [0; 3];
    let mut cin = IN_CHANNELS;
    for l in 0..3 {
        let w = &dims[l];
        if w.len() != 4 || w[1] != cin || w[2] != 3 || w[3] != 3 {
            return Err(format!(
                "{} has shape {}, expected [out, {cin}, 3, 3]",
                TORCH_NAMES[l],
                shape(w)
            ));
        }
        widths[l] = w[0];
        cin = w[0];
        if dims[3 + l] != [w[0]] {
            return Err(format!(
                "{} has shape {}, expected [{}]",
                TORCH_NAMES[3 + l],
                shape(&dims[3 + l]),
                w[0]
            ));
        }
    }
    let f = &dims[6];
    let side = if f.len() == 2 && f[1].is_multiple_of(widths[2]) {
        let hw = f[1] / widths[2];
        let s = (hw as f64).sqrt().round() as usize;
        (s * s == hw && s > 0).then_some(s)
    } else {
        None
    };
    let Some(side) = side else {
        return Err(format!(
            "fc1.weight has shape {}, expected [fc1, {} x S/8 x S/8] for S x S images",
            shape(f),
            widths[2]
        ));
    };
    let fc1 = f[0];
    for (i, want) in [(7, vec![fc1]), (8, vec![1, fc1]), (9, vec![1])] {
        if dims[i] != want {
            return Err(format!(
                "{} has shape {}, expected {}",
                TORCH_NAMES[i],
                shape(&dims[i]),
                shape(&want)
            ));
        }
    }
    let h = Hyper {
        image: side * 8,
        widths,
        fc1,
        ..Hyper::default()
    };
    h.shapes()
        .map_err(|e| format!("a network this program cannot run: {e}"))?;
    Ok(h)
}

/// `model export`'s files: the ONNX graph and/or the safetensors file of the network, each
/// written atomically; one line each on stderr.
pub fn write(
    shapes: &Shapes,
    params: &[f32],
    onnx: Option<&Path>,
    safetensors: Option<&Path>,
) -> Result<(), String> {
    if let Some(p) = onnx {
        // Protocol Buffers parsers, ONNX Runtime's included, refuse messages of 2 GiB or more.
        let bytes = shapes.param_count() as u64 * 4;
        if bytes >= (1 << 31) - (1 << 20) {
            return Err(format!(
                "--onnx {}: the network's {:.1} GiB of weights do not fit in one ONNX file \
                 (2 GiB at most); --safetensors has no such limit",
                p.display(),
                bytes as f64 / (1u64 << 30) as f64
            ));
        }
        write_atomic(p, &onnx_bytes(shapes, params))?;
        crate::errln!(
            "wrote {} (ONNX opset {OPSET}: input `image`, output `p_dog`)",
            p.display()
        )?;
    }
    if let Some(p) = safetensors {
        write_atomic(p, &safetensors_bytes(shapes, params)?)?;
        crate::errln!("wrote {} (PyTorch names and layouts)", p.display())?;
    }
    Ok(())
}

/// `model import`: the network in the safetensors file `src` (see [`from_safetensors`]) to
/// `save` in the parameters.raw format, and the flags that go with it on stderr.
pub fn import(src: &Path, save: &Path) -> Result<(), String> {
    crate::guard::check_outputs(&[(src, "--safetensors")], &[(save, "--save")])?;
    let mut f = crate::guard::open_regular(src, "the safetensors file")?;
    let len = f
        .metadata()
        .map_err(|e| format!("{}: cannot read: {e}", src.display()))?
        .len();
    // The largest network the trainer accepts is far below this; a bigger file is not one.
    if len > MAX_IMPORT_BYTES {
        return Err(format!(
            "{}: {len} bytes is more than any network this program runs ({} GiB at most)",
            src.display(),
            MAX_IMPORT_BYTES >> 30
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes)
        .map_err(|e| format!("{}: cannot read: {e}", src.display()))?;
    let (h, params) = from_safetensors(&bytes).map_err(|e| format!("{}: {e}", src.display()))?;
    let shapes = h.shapes()?;
    crate::parameters::write_raw(save, &shapes, &params)?;
    let [a, b, c] = h.widths;
    crate::errln!(
        "wrote {}: a network for {}x{} images; use it with --widths {a},{b},{c} --fc1 {} (and          --init to train it further, --params to evaluate it)",
        save.display(),
        h.image,
        h.image,
        h.fc1
    )?;
    Ok(())
}

/// The largest safetensors file `import` reads into memory.
const MAX_IMPORT_BYTES: u64 = 16 << 30;

/// The part of ONNX's `onnx.proto` (proto2) that this export writes, as prost messages: field
/// numbers and types as in onnx.proto, repeated scalars unpacked as proto2 encodes them.
mod onnx {
    pub const FLOAT: i32 = 1; // TensorProto.DataType.FLOAT
    pub const ATTR_INT: i32 = 2; // AttributeProto.AttributeType.INT
    pub const ATTR_INTS: i32 = 7; // AttributeProto.AttributeType.INTS

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(string, tag = "6")]
        pub doc_string: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntryProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(string, tag = "10")]
        pub doc_string: String,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, packed = "false", tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, packed = "false", tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        /// Little-endian float32 values, row-major.
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    /// `TypeProto` with its `tensor_type` member of the `value` oneof (the only one used).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TypeTensor>,
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeTensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `TensorShapeProto.Dimension`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "DimValue", tags = "1, 2")]
        pub value: Option<DimValue>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum DimValue {
        #[prost(int64, tag = "1")]
        Value(i64),
        #[prost(string, tag = "2")]
        Param(String),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (Shapes, Vec<f32>) {
        let h = Hyper {
            image: 24,
            widths: [16, 32, 16],
            fc1: 32,
            ..Hyper::default()
        };
        let s = h.shapes().unwrap();
        let p = (0..s.param_count())
            .map(|i| i as f32 * 0.25 - 3.0)
            .collect();
        (s, p)
    }

    #[test]
    fn torch_layout_round_trips_and_permutes_as_documented() {
        let (s, p) = small();
        let t = to_torch(&s, &p);
        // conv2 weight OIHW [o][i][ky][kx] = ours [o][ky][kx][i].
        let (o, i, ky, kx) = (5, 7, 2, 1);
        let ours = p[s.param_lens()[0] + ((o * 3 + ky) * 3 + kx) * 16 + i];
        assert_eq!(t[1].1[((o * 16 + i) * 3 + ky) * 3 + kx], ours);
        // fc1 [j][c*9 + y*3 + x] = ours [j][(y*3 + x)*16 + c] (pool3 is 3x3x16).
        let off: usize = s.param_lens()[..6].iter().sum();
        let (j, c, y, x) = (3, 11, 2, 0);
        assert_eq!(
            t[6].1[j * s.flat + c * 9 + y * 3 + x],
            p[off + j * s.flat + (y * 3 + x) * 16 + c]
        );
        let tensors: Vec<Vec<f32>> = t.into_iter().map(|(_, v)| v).collect();
        let mut back = vec![0.0; p.len()];
        from_torch(&s, &tensors, &mut back);
        assert_eq!(back, p);
    }

    #[test]
    fn safetensors_round_trips_with_its_shapes() {
        let (s, p) = small();
        let bytes = safetensors_bytes(&s, &p).unwrap();
        let (h, back) = from_safetensors(&bytes).unwrap();
        assert_eq!((h.image, h.widths, h.fc1), (24, [16, 32, 16], 32));
        assert_eq!(back, p);
    }

    #[test]
    fn onnx_decodes_as_written() {
        let (s, p) = small();
        let bytes = onnx_bytes(&s, &p);
        let m = onnx::ModelProto::decode(&bytes[..]).unwrap();
        let g = m.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool",
                "Flatten", "Gemm", "Relu", "Gemm", "Sigmoid"
            ]
        );
        assert_eq!(g.initializer.len(), 10);
        assert_eq!(g.initializer[6].dims, [32, 144]);
        assert_eq!(
            (g.input[0].name.as_str(), g.output[0].name.as_str()),
            ("image", "p_dog")
        );
    }

    #[test]
    fn bad_safetensors_are_refused_with_the_reason() {
        let e = from_safetensors(b"not a safetensors file at all").unwrap_err();
        assert!(e.starts_with("not a safetensors file"), "{e}");
        let (s, p) = small();
        // A conv2 weight whose input channels do not match conv1's output.
        let mut t = to_torch(&s, &p);
        t[1].0 = vec![32, 8, 3, 3];
        t[1].1.truncate(32 * 8 * 9);
        let bytes: Vec<(Vec<usize>, Vec<u8>)> =
            t.into_iter().map(|(d, v)| (d, le_bytes(&v))).collect();
        let views = TORCH_NAMES
            .iter()
            .zip(&bytes)
            .map(|(n, (d, b))| (*n, TensorView::new(Dtype::F32, d.clone(), b).unwrap()));
        let file = safetensors::serialize(views, None).unwrap();
        let e = from_safetensors(&file).unwrap_err();
        assert!(
            e.contains("conv2.weight has shape [32, 8, 3, 3], expected [out, 16, 3, 3]"),
            "{e}"
        );
    }
}
