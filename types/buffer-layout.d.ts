// Ambient types for buffer-layout 1.2.2 (CJS, ships none; @types/buffer-layout does not exist).
// Written from node_modules/buffer-layout/lib/Layout.js. Covers the integer, blob, bit-field, struct,
// sequence, offset/greedy, union, cstr/utf8 and const layouts. Decoders throw RangeError on short
// buffers (TOOLCHAIN.md §3): project codecs check lengths before calling them.
declare module 'buffer-layout' {
  export class Layout<T = unknown> {
    constructor(span: number, property?: string);
    /** Fixed byte length, or -1 when it depends on the data (see getSpan). */
    span: number;
    property: string | undefined;
    decode(b: Uint8Array, offset?: number): T;
    /** Returns the number of bytes written. */
    encode(src: T, b: Uint8Array, offset?: number): number;
    getSpan(b?: Uint8Array, offset?: number): number;
    replicate(property: string): this;
    makeDestinationObject(): Record<string, unknown>;
    fromArray(values: unknown[]): T | undefined;
  }

  /** Layouts whose value comes from elsewhere in the buffer (counts, offsets). */
  export class ExternalLayout<T = number> extends Layout<T> {
    isCount(): boolean;
  }
  export class GreedyCount extends ExternalLayout<number> {
    constructor(elementSpan?: number, property?: string);
    elementSpan: number;
  }
  export class OffsetLayout<T = number> extends ExternalLayout<T> {
    constructor(layout: Layout<T>, offset?: number, property?: string);
    layout: Layout<T>;
    offset: number;
  }

  export class UInt extends Layout<number> {}
  export class UIntBE extends Layout<number> {}
  export class Int extends Layout<number> {}
  export class IntBE extends Layout<number> {}
  export class NearUInt64 extends Layout<number> {}
  export class NearUInt64BE extends Layout<number> {}
  export class NearInt64 extends Layout<number> {}
  export class NearInt64BE extends Layout<number> {}
  export class Float extends Layout<number> {}
  export class FloatBE extends Layout<number> {}
  export class Double extends Layout<number> {}
  export class DoubleBE extends Layout<number> {}

  export class Blob extends Layout<Buffer> {
    constructor(length: number | ExternalLayout<number>, property?: string);
    length: number | ExternalLayout<number>;
  }
  export class CString extends Layout<string> {}
  export class UTF8 extends Layout<string> {
    constructor(maxSpan?: number, property?: string);
    maxSpan: number;
  }
  export class Constant<T = unknown> extends Layout<T> {
    constructor(value: T, property?: string);
    value: T;
  }

  export class Sequence<E = unknown> extends Layout<E[]> {
    constructor(elementLayout: Layout<E>, count: number | ExternalLayout<number>, property?: string);
    elementLayout: Layout<E>;
    count: number | ExternalLayout<number>;
  }

  export class Structure<T = Record<string, unknown>> extends Layout<T> {
    constructor(fields: Layout[], property?: string, decodePrefixes?: boolean);
    fields: Layout[];
    decodePrefixes: boolean;
    layoutFor(property: string): Layout | undefined;
    offsetOf(property: string): number | undefined;
  }

  /** A word (u8/u16/u24/u32, LE or BE) split into bit fields; decodes to an object of numbers/booleans. */
  export class BitStructure<T = Record<string, number | boolean>> extends Layout<T> {
    constructor(word: Layout, msb?: boolean | string, property?: string);
    word: Layout;
    msb: boolean;
    fields: BitField[];
    addField(bits: number, property?: string): BitField;
    addBoolean(property: string): Boolean;
    fieldFor(property: string): BitField | undefined;
  }
  export class BitField {
    constructor(container: BitStructure, bits: number, property?: string);
    container: BitStructure;
    bits: number;
    valueMask: number;
    start: number;
    wordMask: number;
    property: string | undefined;
    decode(): number;
    encode(value: number): void;
  }
  // Shadows the global Boolean inside this module only, as the library names it.
  export class Boolean extends BitField {
    constructor(container: BitStructure, property?: string);
  }

  export class UnionDiscriminator {
    constructor(property: string);
    property: string;
    decode(b: Uint8Array, offset?: number): number;
    encode(src: number, b: Uint8Array, offset?: number): number;
  }
  export class UnionLayoutDiscriminator extends UnionDiscriminator {
    constructor(layout: ExternalLayout<number>, property?: string);
    layout: ExternalLayout<number>;
  }
  export class VariantLayout<T = unknown> extends Layout<T> {
    union: Union;
    variant: number;
    layout: Layout<T> | null;
  }
  export class Union<T = Record<string, unknown>> extends Layout<T> {
    constructor(discr: Layout | UnionDiscriminator, defaultLayout: Layout | null, property?: string);
    discriminator: UnionDiscriminator;
    defaultLayout: Layout | null;
    registry: Record<number, VariantLayout>;
    addVariant(variant: number, layout: Layout | null, property?: string): VariantLayout;
    getVariant(vb: number | Uint8Array, offset?: number): VariantLayout | undefined;
    getSourceVariant(src: unknown): VariantLayout | undefined;
  }

  export function greedy(elementSpan?: number, property?: string): GreedyCount;
  export function offset<T = number>(layout: Layout<T>, offset?: number, property?: string): OffsetLayout<T>;

  export function u8(property?: string): UInt;
  export function u16(property?: string): UInt;
  export function u24(property?: string): UInt;
  export function u32(property?: string): UInt;
  export function u40(property?: string): UInt;
  export function u48(property?: string): UInt;
  export function nu64(property?: string): NearUInt64;
  export function u16be(property?: string): UIntBE;
  export function u24be(property?: string): UIntBE;
  export function u32be(property?: string): UIntBE;
  export function u40be(property?: string): UIntBE;
  export function u48be(property?: string): UIntBE;
  export function nu64be(property?: string): NearUInt64BE;
  export function s8(property?: string): Int;
  export function s16(property?: string): Int;
  export function s24(property?: string): Int;
  export function s32(property?: string): Int;
  export function s40(property?: string): Int;
  export function s48(property?: string): Int;
  export function ns64(property?: string): NearInt64;
  export function s16be(property?: string): IntBE;
  export function s24be(property?: string): IntBE;
  export function s32be(property?: string): IntBE;
  export function s40be(property?: string): IntBE;
  export function s48be(property?: string): IntBE;
  export function ns64be(property?: string): NearInt64BE;
  export function f32(property?: string): Float;
  export function f32be(property?: string): FloatBE;
  export function f64(property?: string): Double;
  export function f64be(property?: string): DoubleBE;

  export function struct<T = Record<string, unknown>>(fields: Layout[], property?: string, decodePrefixes?: boolean): Structure<T>;
  export function bits<T = Record<string, number | boolean>>(word: Layout, msb?: boolean | string, property?: string): BitStructure<T>;
  export function seq<E>(elementLayout: Layout<E>, count: number | ExternalLayout<number>, property?: string): Sequence<E>;
  export function union<T = Record<string, unknown>>(discr: Layout | UnionDiscriminator, defaultLayout?: Layout | null, property?: string): Union<T>;
  export function unionLayoutDiscriminator(layout: ExternalLayout<number>, property?: string): UnionLayoutDiscriminator;
  export function blob(length: number | ExternalLayout<number>, property?: string): Blob;
  export function cstr(property?: string): CString;
  export function utf8(maxSpan?: number, property?: string): UTF8;
  /** Named `const` in the library; exported under that name (TOOLCHAIN.md §8: `import * as lo` then `lo.const`). */
  function constLayout<T>(value: T, property?: string): Constant<T>;
  export { constLayout as const };

  export function bindConstructorLayout(Class: new (...args: never[]) => unknown, layout: Layout): void;
  export function nameWithProperty(name: string, lo: Layout): string;
}
