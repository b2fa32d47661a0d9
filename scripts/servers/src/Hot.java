// Hot: runs a few methods until HotSpot JIT-compiles them (C1, then C2),
// prints "ready", then idles in Thread.sleep so that every thread parks.
public class Hot {
    static long mix(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        return x;
    }

    static double poly(double x) {
        double s = 0;
        for (int i = 0; i < 16; i++) {
            s = s * x + i;
        }
        return s;
    }

    public static void main(String[] args) throws Exception {
        long acc = 1;
        double d = 0;
        for (int round = 0; round < 200; round++) {
            for (int i = 0; i < 100_000; i++) {
                acc = mix(acc + i);
                d += poly((i & 1023) / 1024.0);
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 10_000; i++) {
            sb.setLength(0);
            sb.append("k").append(i).append('=').append(acc ^ i);
        }
        System.out.println("ready " + acc + " " + d + " " + sb.length());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
