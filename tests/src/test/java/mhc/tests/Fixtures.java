package mhc.tests;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the independently computed reference cases in {@code ../shared/fixtures}. */
final class Fixtures {
    static final String[] CASES = {"residual-dense", "hc-dense", "mhc-moe"};

    private Fixtures() {
    }

    /** The fixtures directory, or a skipped test that says where it was looked for. */
    static Path dir() {
        String prop = System.getProperty("mhc.shared");
        Path base = prop != null ? Path.of(prop) : Path.of("..", "shared");
        Path dir = base.resolve("fixtures").normalize();
        Assumptions.assumeTrue(Files.isDirectory(dir),
                "reference fixtures not found at " + dir + " (the shared/ folder beside the checkout); skipping");
        return dir;
    }

    static Path file(String caseName, String suffix) {
        Path p = dir().resolve(caseName + "." + suffix);
        Assumptions.assumeTrue(Files.isRegularFile(p), "fixture " + p + " is absent; skipping");
        return p;
    }
}
