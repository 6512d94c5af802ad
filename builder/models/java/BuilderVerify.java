// builder's Java check (`builder verify --aar`): runs a model through the release's public Java API, exactly as an
// app does, on this machine's JVM, and writes the outputs for builder to compare with torch eager.
//
//   java -cp classes.jar:nativeloader.jar:. BuilderVerify lite|full MODEL INPUTS.bt OUTPUTS.bt
//
// Tensors travel in builder tensor files (see builder/models/verify.py): "BUILDER-TENSORS 1\n", "<count>\n", then per
// tensor "<dtype> <ndim> <dims...>\n" and the raw little-endian data. Uses only the API of org.pytorch at 1.x/2.x:
// LiteModuleLoader.load / Module.load, IValue.from(Tensor.fromBlob(...)), forward, getDataAs*Array.
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import org.pytorch.IValue;
import org.pytorch.Module;
import org.pytorch.Tensor;

public final class BuilderVerify {
  private static final String MAGIC = "BUILDER-TENSORS 1";

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: BuilderVerify lite|full MODEL INPUTS.bt OUTPUTS.bt");
      System.exit(2);
    }
    long t0 = System.nanoTime();
    Module module = load(args[0], args[1]);
    long t1 = System.nanoTime();
    List<Tensor> inputs = readTensors(Files.readAllBytes(Paths.get(args[2])));
    IValue[] values = new IValue[inputs.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = IValue.from(inputs.get(i));
    }
    long t2 = System.nanoTime();
    IValue result = module.forward(values);
    long t3 = System.nanoTime();
    List<Tensor> outputs = new ArrayList<>();
    flatten(result, outputs);
    Files.write(Paths.get(args[3]), writeTensors(outputs));
    module.destroy();
    System.out.printf("load_ms=%.3f forward_ms=%.3f outputs=%d%n", (t1 - t0) / 1e6, (t3 - t2) / 1e6, outputs.size());
    System.out.flush();
    // fbjni starts a non-daemon "HybridData DestructorThread" (seen on the real 1.13.1 AAR: the JVM then never exits
    // after main returns; on Android the app's process lives on, so nobody notices).
    System.exit(0);
  }

  private static Module load(String kind, String path) throws Exception {
    if (kind.equals("full")) {
      return Module.load(path);
    }
    // LiteModuleLoader exists only in lite builds' classes.jar: reflection keeps this file compiling against both.
    return (Module) Class.forName("org.pytorch.LiteModuleLoader").getMethod("load", String.class).invoke(null, path);
  }

  private static void flatten(IValue value, List<Tensor> out) {
    if (value.isTensor()) {
      out.add(value.toTensor());
    } else if (value.isTuple()) {
      for (IValue item : value.toTuple()) {
        flatten(item, out);
      }
    } else if (value.isList()) {
      for (IValue item : value.toList()) {
        flatten(item, out);
      }
    } else if (value.isTensorList()) {
      for (Tensor item : value.toTensorList()) {
        out.add(item);
      }
    } else {
      throw new IllegalStateException("model output holds something other than tensors");
    }
  }

  private static List<Tensor> readTensors(byte[] blob) {
    ByteBuffer buf = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
    if (!line(buf).equals(MAGIC)) {
      throw new IllegalArgumentException("not a builder tensor file");
    }
    int count = Integer.parseInt(line(buf).trim());
    List<Tensor> tensors = new ArrayList<>();
    for (int t = 0; t < count; t++) {
      String[] header = line(buf).trim().split(" ");
      int ndim = Integer.parseInt(header[1]);
      long[] shape = new long[ndim];
      int numel = 1;
      for (int d = 0; d < ndim; d++) {
        shape[d] = Long.parseLong(header[2 + d]);
        numel *= (int) shape[d];
      }
      tensors.add(readTensor(header[0], shape, numel, buf));
    }
    return tensors;
  }

  private static Tensor readTensor(String dtype, long[] shape, int numel, ByteBuffer buf) {
    switch (dtype) {
      case "f32": {
        float[] data = new float[numel];
        buf.asFloatBuffer().get(data);
        buf.position(buf.position() + 4 * numel);
        return Tensor.fromBlob(data, shape);
      }
      case "f64": {
        double[] data = new double[numel];
        buf.asDoubleBuffer().get(data);
        buf.position(buf.position() + 8 * numel);
        return Tensor.fromBlob(data, shape);
      }
      case "i32": {
        int[] data = new int[numel];
        buf.asIntBuffer().get(data);
        buf.position(buf.position() + 4 * numel);
        return Tensor.fromBlob(data, shape);
      }
      case "i64": {
        long[] data = new long[numel];
        buf.asLongBuffer().get(data);
        buf.position(buf.position() + 8 * numel);
        return Tensor.fromBlob(data, shape);
      }
      case "i8": {
        byte[] data = new byte[numel];
        buf.get(data);
        return Tensor.fromBlob(data, shape);
      }
      case "u8": {
        byte[] data = new byte[numel];
        buf.get(data);
        return Tensor.fromBlobUnsigned(data, shape);
      }
      default:
        throw new IllegalArgumentException("input dtype " + dtype + " is not supported by org.pytorch.Tensor");
    }
  }

  private static byte[] writeTensors(List<Tensor> tensors) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write((MAGIC + "\n" + tensors.size() + "\n").getBytes(StandardCharsets.US_ASCII));
    for (Tensor t : tensors) {
      long[] shape = t.shape();
      StringBuilder header = new StringBuilder();
      ByteBuffer data;
      switch (t.dtype()) {
        case FLOAT32: {
          float[] v = t.getDataAsFloatArray();
          header.append("f32");
          data = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
          data.asFloatBuffer().put(v);
          break;
        }
        case FLOAT64: {
          double[] v = t.getDataAsDoubleArray();
          header.append("f64");
          data = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
          data.asDoubleBuffer().put(v);
          break;
        }
        case INT32: {
          int[] v = t.getDataAsIntArray();
          header.append("i32");
          data = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
          data.asIntBuffer().put(v);
          break;
        }
        case INT64: {
          long[] v = t.getDataAsLongArray();
          header.append("i64");
          data = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
          data.asLongBuffer().put(v);
          break;
        }
        case INT8: {
          byte[] v = t.getDataAsByteArray();
          header.append("i8");
          data = ByteBuffer.wrap(v);
          break;
        }
        case UINT8: {
          byte[] v = t.getDataAsUnsignedByteArray();
          header.append("u8");
          data = ByteBuffer.wrap(v);
          break;
        }
        default:
          throw new IllegalStateException("output dtype " + t.dtype() + " is not supported");
      }
      header.append(' ').append(shape.length);
      for (long d : shape) {
        header.append(' ').append(d);
      }
      out.write((header + "\n").getBytes(StandardCharsets.US_ASCII));
      out.write(data.array());
    }
    return out.toByteArray();
  }

  private static String line(ByteBuffer buf) {
    StringBuilder text = new StringBuilder();
    while (buf.hasRemaining()) {
      byte b = buf.get();
      if (b == '\n') {
        return text.toString();
      }
      text.append((char) b);
    }
    throw new IllegalArgumentException("truncated builder tensor file");
  }
}
