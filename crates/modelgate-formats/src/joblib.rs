//! joblib's pickle dialect (`joblib/numpy_pickle.py`).
//!
//! `joblib.dump` pickles each NumPy array as a `NumpyArrayWrapper` and, right after the BUILD that
//! gives the wrapper its state, writes the array's raw bytes into the pickle stream (after an
//! alignment byte and padding). `joblib.load`'s unpickler reads those bytes at that point and then
//! carries on unpickling. A reader that does not skip them stops at the first array, and a payload
//! placed after it goes unseen; this loader skips exactly what joblib skips.

use crate::driver::Driver;
use crate::inventory::{Note, NoteKind};
use crate::pickle::value::{Obj, Value};
use crate::pickle::{End, Loader, Machine, PlainLoader};
use crate::stream::Stream;

/// Module paths under which joblib's wrapper class has been pickled.
const WRAPPER_CLASSES: &[(&str, &str)] = &[
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
];

/// `pickle.load` semantics plus joblib's array handling after BUILD of a `NumpyArrayWrapper`.
#[derive(Default)]
pub(crate) struct JoblibLoader {
    wrappers: u64,
}

impl JoblibLoader {
    /// True once a wrapper has been seen (the file is joblib's, not a plain pickle).
    pub(crate) fn saw_wrapper(&self) -> bool {
        self.wrappers > 0
    }
}

/// What the wrapper's state says about the array bytes that follow.
struct ArrayLayout {
    count: u64,
    itemsize: u64,
    object: bool,
    aligned: bool,
}

impl Loader for JoblibLoader {
    fn after_build(
        &mut self,
        m: &mut Machine<'_>,
        s: &mut Stream<'_>,
        ctx: &mut dyn Driver,
    ) -> Result<(), crate::pickle::vm::Stop> {
        let Some(top) = m.top().cloned() else {
            return Ok(());
        };
        let is_wrapper = m.instance_class(&top).is_some_and(|g| {
            WRAPPER_CLASSES.iter().any(|(module, name)| g.module == *module && g.name == *name)
        });
        if !is_wrapper {
            return Ok(());
        }
        self.wrappers += 1;
        let offset = s.position();
        let layout = match layout(m, &top) {
            Ok(l) => l,
            Err(why) => {
                m.note(
                    Note::new(
                        NoteKind::Malformed,
                        format!("joblib array wrapper with unusable state ({why}); the array bytes that follow cannot be skipped, so the rest of the stream was not inspected"),
                    )
                    .at(offset),
                );
                return Err(crate::pickle::vm::Stop);
            }
        };
        if layout.object {
            // joblib unpickles object arrays with a fresh Unpickler on the same file.
            return match m.run_nested(s, ctx, &mut PlainLoader) {
                End::Stop(_) => {
                    m.replace_top(Value::Unknown("numpy object array"));
                    Ok(())
                }
                _ => Err(crate::pickle::vm::Stop),
            };
        }
        if layout.aligned {
            let pad = match s.read_u8() {
                Ok(Some(p)) => u64::from(p),
                _ => return Err(truncated(m, offset)),
            };
            if s.skip(pad).ok() != Some(pad) {
                return Err(truncated(m, offset));
            }
        }
        let Some(bytes) = layout.count.checked_mul(layout.itemsize) else {
            m.note(Note::new(NoteKind::Malformed, "joblib array size overflows 64 bits").at(offset));
            return Err(crate::pickle::vm::Stop);
        };
        if s.skip(bytes).ok() != Some(bytes) {
            return Err(truncated(m, offset));
        }
        m.replace_top(Value::Unknown("numpy array"));
        Ok(())
    }
}

fn truncated(m: &mut Machine<'_>, offset: u64) -> crate::pickle::vm::Stop {
    m.note(
        Note::new(NoteKind::Malformed, "the file ends inside the array data of a joblib array wrapper")
            .at(offset),
    );
    crate::pickle::vm::Stop
}

fn layout(m: &Machine<'_>, wrapper: &Value) -> Result<ArrayLayout, String> {
    let Some(Obj::Instance { state: Some(state), .. }) = m.obj(wrapper) else {
        return Err("no state".into());
    };
    let shape = m.dict_get(state, "shape").ok_or("no shape")?;
    let dims = shape.as_tuple().ok_or("shape is not a tuple")?;
    let mut count = 1u64;
    for d in dims {
        let n = d.as_int().filter(|n| *n >= 0).ok_or("shape holds a non-integer")?;
        count = count.checked_mul(n as u64).ok_or("element count overflows")?;
    }
    let dtype = m.dict_get(state, "dtype").ok_or("no dtype")?;
    let (itemsize, object) = dtype_layout(m, dtype)?;
    let aligned = m.dict_get(state, "numpy_array_alignment_bytes").is_some();
    Ok(ArrayLayout { count, itemsize, object, aligned })
}

/// Item size and object-ness of a pickled `numpy.dtype(code, False, True)` with its BUILD state
/// `(version, byteorder, subarray, names, fields, elsize, alignment, flags, …)`.
fn dtype_layout(m: &Machine<'_>, dtype: &Value) -> Result<(u64, bool), String> {
    let Some(Obj::Instance { callee, args, state, .. }) = m.obj(dtype) else {
        return Err("dtype is not a reconstructed numpy.dtype".into());
    };
    let class = m.global(callee).ok_or("dtype is not built from a global")?;
    let numpy_dtype = (class.module == "numpy" && class.name == "dtype") || class.name.ends_with("DType");
    if !numpy_dtype {
        return Err(format!("dtype is built by {}", class.qualified()));
    }
    let code = args
        .as_tuple()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or("dtype code is not a string")?;
    let (mut itemsize, mut object) = crate::numpy::typestr_size(code)?;
    if let Some(st) = state.as_ref().and_then(Value::as_tuple) {
        if let Some(elsize) = st.get(5).and_then(Value::as_int)
            && elsize > 0
        {
            itemsize = elsize as u64;
        }
        if let Some(flags) = st.get(7).and_then(Value::as_int) {
            // NPY_ITEM_REFCOUNT: the dtype holds Python objects.
            object |= flags & 1 == 1;
        }
    }
    Ok((itemsize, object))
}
