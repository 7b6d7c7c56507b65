/**
 * The compute kernels of the model in shared/spec/MODEL.md, as plain static methods over
 * primitive arrays.
 *
 * <p>Each method is at once the JVM reference, the oracle of the fast paths, and a TornadoVM
 * task: the loops whose iterations are independent carry {@code @Parallel}; inside a kernel
 * there are only primitive arrays, primitive locals, loops and {@code Math} calls.
 *
 * <p>Conventions, the same in every file:
 * <ul>
 *   <li>Letters: N tokens (B*T), n streams, C width, H heads, D = C/H, T sequence length,
 *       F hidden width, E experts, K active experts, V vocabulary. Arrays are row-major; each
 *       array parameter has a shape comment.</li>
 *   <li>Outputs come first, then inputs, sizes last. A forward overwrites its outputs
 *       ({@code =}). A backward <b>accumulates</b> ({@code +=}) into every gradient it writes,
 *       activations and parameters alike, so the caller zeroes gradient buffers once per
 *       step and several consumers of one tensor simply add their parts. Buffers named
 *       {@code work...} are scratch and are overwritten.</li>
 *   <li>Float sums are accumulated in float, as the spec's fp32 reference does.</li>
 * </ul>
 */
package mhc.kernels;
