// Batch gather: rows picked by an index list from a data set resident on the GPU.
// Includes lib/grid.wgsl, lib/philox.wgsl and lib/corrupt_four.wgsl (gather_corrupt's noise). One thread per output element, or per word of four bytes. With
// c = state[1], the cursor of the step state (see step.wgsl), the batch is rows c..c+rows of
// the epoch's index list:
//   gather_u8:  out (rows, width) = data_u8[indices[c + r], :] / 255, the data set stored as
//               bytes packed four to a u32 word (byte i = (word[i / 4] >> 8·(i % 4)) & 0xff)
//   gather_u8_words: the same for width a multiple of 4, one thread per word: one load of the
//               word and one vec4 store for four bytes (on lavapipe, where each load and
//               store is a loop over the lanes, a quarter of them)
//   gather_f32: out (rows, width) = data_f32[indices[c + r], :], the floats' bits as words
// The data set lies in shards of rows_per_shard whole rows each, so that a set larger than one
// storage binding may take (128 MiB on many adapters) still stays on the GPU; each shard's
// words start at its first row. A dispatch binds four of them (bindings 3 to 6), shards
// first_shard .. first_shard + 3, and writes only the rows that come from them: a set of more
// than four shards takes a dispatch per four. The host binds the last shard again in unused
// slots. An index at or beyond data_rows gives a row of zeros, written by the dispatch of
// first_shard 0 (the host checks indices it makes).
//   gather_join: a conditional model's batch in one dispatch, for a set in at most two shards
//               (first_shard 0) and its one-hot labels in one: a thread per element of
//               x | label, out (rows, width) as gather_u8 (DATA_BYTES) or gather_f32 does,
//               label_out (rows, label_cols) = labels[source row, :], and joined (rows,
//               width + label_cols) = out | label_out, the encoder's input, in place of a
//               gather of the labels and a concat
//   gather_corrupt: a batch that a denoising model corrupts, in one dispatch: a thread per
//               four elements 4g .. 4g + 3 of out (rows of any width, bytes when DATA_BYTES,
//               else floats), as gather_u8 or gather_f32 reads them, and noisy, the same
//               four corrupted as corrupt.wgsl does (lib/corrupt_four.wgsl, the step from
//               the state's word 0): the same bits, in place of a corrupt dispatch
//   gather_u8_words_corrupt: the same for bytes of a width that is a multiple of 4, one
//               load of a word a thread and vec4 stores, as gather_u8_words
// IN_ORDER: the batch is rows c..c+rows of the set itself, no index list read (evaluation
// and inference passes, whose rows past the set give the last batch's zero rows): a set of
// any number of rows needs no order buffer, which would outgrow a binding first.

override IN_ORDER: bool = false;
override DATA_BYTES: bool = true;  // gather_join: the set holds bytes, else floats

struct Params {
    rows: u32,
    width: u32,
    data_rows: u32,
    rows_per_shard: u32,
    first_shard: u32,
    label_cols: u32,  // gather_join only
    seed_lo: u32,     // gather_corrupt only, to amount
    seed_hi: u32,
    stream: u32,
    kind: u32,
    amount: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
    pad4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (rows, width)
@group(0) @binding(2) var<storage, read> indices: array<u32>;    // (≥ c + rows) epoch order
@group(0) @binding(3) var<storage, read> shard0: array<u32>;     // shard first_shard
@group(0) @binding(4) var<storage, read> shard1: array<u32>;     // shard first_shard + 1
@group(0) @binding(5) var<storage, read> shard2: array<u32>;
@group(0) @binding(6) var<storage, read> shard3: array<u32>;
@group(0) @binding(7) var<storage, read> state: array<u32>;      // (2) step, cursor
@group(0) @binding(8) var<storage, read_write> out4: array<vec4<f32>>;  // out as (rows, width / 4)
@group(0) @binding(9) var<storage, read_write> joined: array<f32>;     // (rows, width + label_cols)
@group(0) @binding(10) var<storage, read_write> label_out: array<f32>; // (rows, label_cols)
@group(0) @binding(11) var<storage, read> labels: array<f32>;          // (data_rows, label_cols)
@group(0) @binding(12) var<storage, read_write> noisy: array<f32>;     // (rows, width) corrupted
@group(0) @binding(13) var<storage, read_write> noisy4: array<vec4<f32>>;  // noisy as (rows, width / 4)

// The data row that batch row `r` takes.
fn source_row_of(r: u32) -> u32 {
    if (IN_ORDER) {
        return state[1] + r;
    }
    return indices[state[1] + r];
}

// Whether this dispatch writes a row taken from data row `source_row`: a row of its four
// shards, or (the dispatch of the first four) a row of zeros for an index past the set.
fn writes_row(source_row: u32) -> bool {
    if (source_row >= params.data_rows) {
        return params.first_shard == 0u;
    }
    let shard = source_row / params.rows_per_shard;
    return shard >= params.first_shard && shard - params.first_shard < 4u;
}

// Word `index` of bound shard `shard` (0 to 3: shard first_shard + shard).
fn shard_word(shard: u32, index: u32) -> u32 {
    if (shard == 0u) {
        return shard0[index];
    }
    switch shard {
        case 1u: { return shard1[index]; }
        case 2u: { return shard2[index]; }
        default: { return shard3[index]; }
    }
}

// Element `c` of data row `source_row` (below data_rows), from this dispatch's shards: a
// byte / 255 or a float.
fn element_of(source_row: u32, c: u32, bytes: bool) -> f32 {
    let shard = source_row / params.rows_per_shard - params.first_shard;
    let element = (source_row % params.rows_per_shard) * params.width + c;
    if (bytes) {
        let byte = (shard_word(shard, element / 4u) >> (8u * (element % 4u))) & 0xffu;
        return f32(byte) / 255.0;
    }
    return bitcast<f32>(shard_word(shard, element));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_u8(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.width) {
        return;
    }
    let source_row = source_row_of(i / params.width);
    if (!writes_row(source_row)) {
        return;
    }
    var value = 0.0;
    if (source_row < params.data_rows) {
        value = element_of(source_row, i % params.width, true);
    }
    out[i] = value;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_u8_words(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);  // word i of out: elements 4i .. 4i + 3
    let words = params.width / 4u;
    if (i >= params.rows * words) {
        return;
    }
    let source_row = source_row_of(i / words);
    if (!writes_row(source_row)) {
        return;
    }
    out4[i] = word_of(source_row, i % words, words);
}

// The four bytes / 255 of word `word` of data row `source_row` (zeros past the set), rows of
// `words` words, from this dispatch's shards.
fn word_of(source_row: u32, word: u32, words: u32) -> vec4<f32> {
    if (source_row >= params.data_rows) {
        return vec4<f32>();
    }
    let shard = source_row / params.rows_per_shard - params.first_shard;
    let row = source_row % params.rows_per_shard;
    let packed = shard_word(shard, row * words + word);
    let bytes = (vec4<u32>(packed) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
    return vec4<f32>(bytes) / 255.0;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_f32(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.width) {
        return;
    }
    let source_row = source_row_of(i / params.width);
    if (!writes_row(source_row)) {
        return;
    }
    var value = 0.0;
    if (source_row < params.data_rows) {
        value = element_of(source_row, i % params.width, false);
    }
    out[i] = value;
}

// Word `index` of shard 0 or 1 (gather_join, which binds only those two).
fn two_shard_word(shard: u32, index: u32) -> u32 {
    if (shard == 0u) {
        return shard0[index];
    }
    return shard1[index];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_join(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    let joined_width = params.width + params.label_cols;
    if (i >= params.rows * joined_width) {
        return;
    }
    let r = i / joined_width;
    let c = i % joined_width;
    let source_row = source_row_of(r);
    var value = 0.0;
    if (source_row < params.data_rows && c < params.width) {
        let shard = source_row / params.rows_per_shard;
        let element = (source_row % params.rows_per_shard) * params.width + c;
        if (DATA_BYTES) {
            let byte = (two_shard_word(shard, element / 4u) >> (8u * (element % 4u))) & 0xffu;
            value = f32(byte) / 255.0;
        } else {
            value = bitcast<f32>(two_shard_word(shard, element));
        }
    } else if (source_row < params.data_rows) {
        value = labels[source_row * params.label_cols + c - params.width];
    }
    joined[i] = value;
    if (c < params.width) {
        out[r * params.width + c] = value;
    } else {
        label_out[r * params.label_cols + c - params.width] = value;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_corrupt(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_index(group, groups, local);  // elements 4g .. 4g + 3 of out
    let n = params.rows * params.width;
    if (g * 4u >= n) {
        return;
    }
    var clean: array<f32, 4>;
    var written: array<bool, 4>;
    for (var j = 0u; j < 4u; j++) {
        let e = g * 4u + j;
        if (e < n) {
            let source_row = source_row_of(e / params.width);
            written[j] = writes_row(source_row);
            if (written[j] && source_row < params.data_rows) {
                clean[j] = element_of(source_row, e % params.width, DATA_BYTES);
            }
        }
    }
    let corrupted = corrupt_four(clean, g, state[0]);
    for (var j = 0u; j < 4u; j++) {
        if (written[j]) {
            out[g * 4u + j] = clean[j];
            noisy[g * 4u + j] = corrupted[j];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_u8_words_corrupt(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);  // word i of out: elements 4i .. 4i + 3
    let words = params.width / 4u;
    if (i >= params.rows * words) {
        return;
    }
    let source_row = source_row_of(i / words);
    if (!writes_row(source_row)) {
        return;
    }
    let clean = word_of(source_row, i % words, words);
    out4[i] = clean;
    let corrupted = corrupt_four(array<f32, 4>(clean.x, clean.y, clean.z, clean.w), i, state[0]);
    noisy4[i] = vec4<f32>(corrupted[0], corrupted[1], corrupted[2], corrupted[3]);
}
