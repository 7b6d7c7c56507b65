package mhc.engine.cli;

import mhc.engine.InputException;

import java.nio.file.Files;
import java.nio.file.Path;

/** Checks on output paths, made before any work so that a long job does not fail at its end. */
final class Paths {
    private Paths() {
    }

    static void requireWritableParent(Path file) {
        Path parent = file.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new InputException(file + ": directory " + parent + " does not exist; create it first");
        }
        if (!Files.isWritable(parent)) {
            throw new InputException(file + ": directory " + parent + " is not writable; choose another --out");
        }
        if (Files.isDirectory(file)) {
            throw new InputException(file + ": is a directory; give a file name");
        }
    }
}
