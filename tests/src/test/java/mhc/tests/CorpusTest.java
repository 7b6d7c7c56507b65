package mhc.tests;

import mhc.engine.InputException;
import mhc.engine.data.Corpus;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@link Corpus}: the default Europarl corpus, files and directories, the split, and answers to bad input. */
class CorpusTest {
    @TempDir
    static Path dir;
    static Corpus europarl;
    static long loadMillis;

    @BeforeAll
    static void loadDefault() {
        long t0 = System.nanoTime();
        europarl = Corpus.load(null);
        loadMillis = (System.nanoTime() - t0) / 1_000_000;
    }

    // ---------------------------------------------------------------- the default corpus

    @Test
    void defaultCorpusLoadsWithBothSplits() {
        assertEquals(Corpus.DEFAULT_SOURCE, europarl.source());
        assertTrue(europarl.source().contains("Europarl"), europarl.source());
        assertTrue(europarl.train().length >= 15_000_000, "train has " + europarl.train().length + " bytes");
        assertTrue(europarl.validation().length > 0);
        int lines = europarl.trainLines() + europarl.validationLines();
        assertEquals(17_597, lines, "one body per line of europarl.lines.txt");
        assertEquals(lines / 100, europarl.validationLines(), "validation is the last 1% of lines");
        assertEquals(europarl.trainLines(), count(europarl.train(), (byte) '\n') + 1);
        assertEquals(europarl.validationLines(), count(europarl.validation(), (byte) '\n') + 1);
        assertTrue(loadMillis < 10_000, "loading took " + loadMillis + " ms");
        System.out.printf("default corpus: train %d bytes / %d lines, validation %d bytes / %d lines, loaded in %d ms%n",
                europarl.train().length, europarl.trainLines(), europarl.validation().length, europarl.validationLines(), loadMillis);
    }

    @Test
    void defaultCorpusIsUtf8BodiesWithoutMetadata() throws CharacterCodingException {
        String train = strictUtf8(europarl.train());
        String val = strictUtf8(europarl.validation());
        // Each line of the file is title<TAB>date<TAB>body; a date field left in would show up as <TAB>yyyy-mm-dd<TAB>.
        Pattern date = Pattern.compile("(?m)^[^\\t\\n]*\\t\\d{4}-\\d{2}-\\d{2}\\t");
        for (String s : new String[]{train, val}) {
            Matcher m = date.matcher(s);
            assertFalse(m.find(), () -> "metadata left at offset " + m.start() + ": " + s.substring(m.start(), Math.min(s.length(), m.start() + 60)));
        }
        // The first line of the file is "(1)<TAB>2004-03-30<TAB>Istituzioni europee proteggerlo ...": the title is in the body.
        assertTrue(train.startsWith("Istituzioni europee proteggerlo in tutti i campi."), train.substring(0, 60));
        assertFalse(train.contains("\r"));
        // Multilingual: more than Latin script, e.g. Greek.
        assertTrue(train.codePoints().anyMatch(c -> Character.UnicodeScript.of(c) == Character.UnicodeScript.GREEK));
    }

    @Test
    void luceneVersionMatchesThePom() throws IOException {
        Path pom = Path.of(System.getProperty("basedir", ".")).resolve("../engine/pom.xml");
        assumeTrue(Files.isRegularFile(pom), "no " + pom);
        Matcher m = Pattern.compile("<lucene\\.version>([^<]+)</lucene\\.version>").matcher(Files.readString(pom));
        assertTrue(m.find(), "no lucene.version property in " + pom);
        assertEquals(m.group(1), Corpus.LUCENE_VERSION, "Corpus.LUCENE_VERSION must equal lucene.version in engine/pom.xml");
    }

    @Test
    void defaultCorpusHoldsLongWindows() {
        europarl.requireWindow(1024);
        InputException e = assertThrows(InputException.class, () -> europarl.requireWindow(1_000_000));
        assertOneLine(e, "Europarl");
        assertTrue(e.getMessage().contains("--seq-len"), e.getMessage());
    }

    // ---------------------------------------------------------------- files and directories

    @Test
    void textFileSplitsOnLines() throws IOException {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 250; i++) {
            s.append("line ").append(i).append(" héllo wörld\n");
        }
        Path f = write("lines.txt", s.toString());
        Corpus c = Corpus.load(f);
        assertEquals(f.toString(), c.source());
        assertEquals(248, c.trainLines());
        assertEquals(2, c.validationLines());
        assertEquals("line 248 héllo wörld\nline 249 héllo wörld\n", new String(c.validation(), StandardCharsets.UTF_8));
        String train = new String(c.train(), StandardCharsets.UTF_8);
        assertTrue(train.startsWith("line 0 héllo wörld\n"));
        assertTrue(train.endsWith("line 247 héllo wörld"), "no separating newline at the end of train");
        // nothing is lost but the one '\n' between the parts
        assertEquals(Files.size(f), c.train().length + 1 + c.validation().length);
        c.requireWindow(10);
    }

    @Test
    void fewLinesStillGiveOneValidationLine() throws IOException {
        Corpus c = Corpus.load(write("two.txt", "first line\nsecond"));
        assertEquals("first line", new String(c.train(), StandardCharsets.UTF_8));
        assertEquals("second", new String(c.validation(), StandardCharsets.UTF_8));
    }

    @Test
    void oneLineIsSplitByBytesOnACharacterBoundary() throws IOException {
        String text = "a" + "\u20ac".repeat(233);   // 700 bytes, no newline; 1% = 7 bytes would cut inside a 3-byte euro sign
        Corpus c = Corpus.load(write("one.txt", text));
        assertEquals(1, c.validationLines());
        assertEquals(700, c.train().length + c.validation().length);
        assertEquals(9, c.validation().length, "the cut moves back to the start of the character");
        assertEquals(text, new String(c.train(), StandardCharsets.UTF_8) + new String(c.validation(), StandardCharsets.UTF_8));
    }

    @Test
    void directoryIsReadRecursivelyInSortedOrderSkippingHiddenFiles() throws IOException {
        Path d = Files.createDirectories(dir.resolve("tree"));
        Files.createDirectories(d.resolve("b/sub"));
        Files.createDirectories(d.resolve("a"));
        Files.createDirectories(d.resolve(".git"));
        Files.writeString(d.resolve("c.txt"), "C\n");
        Files.writeString(d.resolve("b/sub/z.txt"), "BZ");        // no final newline: one is added
        Files.writeString(d.resolve("b/a.txt"), "BA\n");
        Files.writeString(d.resolve("a/1.txt"), "A1\n");
        Files.writeString(d.resolve("a/empty.txt"), "");
        Files.writeString(d.resolve(".hidden.txt"), "HIDDEN\n");
        Files.writeString(d.resolve(".git/config"), "GIT\n");
        Corpus c = Corpus.load(d);
        assertEquals(d.toString(), c.source());
        // order: a/1.txt, a/empty.txt, b/a.txt, b/sub/z.txt, c.txt; the last line is validation
        assertEquals("A1\nBA\nBZ", new String(c.train(), StandardCharsets.UTF_8));
        assertEquals("C\n", new String(c.validation(), StandardCharsets.UTF_8));
    }

    @Test
    void byteOrderMarkIsDropped() throws IOException {
        Path f = dir.resolve("bom.txt");
        Files.write(f, new byte[]{(byte) 0xEF, (byte) 0xBB, (byte) 0xBF, 'a', '\n', 'b'});
        Corpus c = Corpus.load(f);
        assertArrayEquals(new byte[]{'a'}, c.train());
        assertArrayEquals(new byte[]{'b'}, c.validation());
    }

    // ---------------------------------------------------------------- bad input

    @Test
    void missingPath() {
        Path p = dir.resolve("no-such-file.txt");
        assertOneLine(assertThrows(InputException.class, () -> Corpus.load(p)), p.toString());
    }

    @Test
    void emptyFile() throws IOException {
        Path p = write("empty.txt", "");
        assertOneLine(assertThrows(InputException.class, () -> Corpus.load(p)), p.toString(), "empty");
    }

    @Test
    void whitespaceOnlyFile() throws IOException {
        Path p = write("blank.txt", "  \n\t\r\n   \n");
        assertOneLine(assertThrows(InputException.class, () -> Corpus.load(p)), p.toString(), "whitespace");
    }

    @Test
    void invalidUtf8NamesTheOffset() throws IOException {
        Path p = dir.resolve("latin1.txt");
        byte[] b = "caf\u00e9 ok\n".getBytes(StandardCharsets.UTF_8);       // 9 valid bytes
        byte[] bad = new byte[b.length + 4];
        System.arraycopy(b, 0, bad, 0, b.length);
        bad[b.length] = 'n';
        bad[b.length + 1] = (byte) 0xE9;                                    // Latin-1 é: not UTF-8
        bad[b.length + 2] = 'e';
        bad[b.length + 3] = '\n';
        Files.write(p, bad);
        InputException e = assertThrows(InputException.class, () -> Corpus.load(p));
        assertOneLine(e, p.toString(), "UTF-8", "offset " + (b.length + 1));
    }

    @Test
    void invalidUtf8InADirectoryNamesTheFile() throws IOException {
        Path d = Files.createDirectories(dir.resolve("mixed"));
        Files.writeString(d.resolve("good.txt"), "fine text\n");
        Path badFile = d.resolve("z-bad.txt");
        Files.write(badFile, new byte[]{'x', (byte) 0xC3});                // truncated two-byte sequence at the end
        InputException e = assertThrows(InputException.class, () -> Corpus.load(d));
        assertOneLine(e, badFile.toString(), "offset 1");
    }

    @Test
    void emptyDirectory() throws IOException {
        Path d = Files.createDirectories(dir.resolve("nothing"));
        Files.createDirectories(d.resolve("sub"));
        Files.writeString(d.resolve(".hidden"), "not counted\n");
        assertOneLine(assertThrows(InputException.class, () -> Corpus.load(d)), d.toString(), "no files");
    }

    @Test
    void directoryOfEmptyFiles() throws IOException {
        Path d = Files.createDirectories(dir.resolve("empties"));
        Files.writeString(d.resolve("a.txt"), "");
        Files.writeString(d.resolve("b.txt"), "");
        assertOneLine(assertThrows(InputException.class, () -> Corpus.load(d)), d.toString(), "empty");
    }

    @Test
    void tooShortForTheWindow() throws IOException {
        Path p = write("short.txt", "a few words\nand a second line\n");
        Corpus c = Corpus.load(p);
        c.requireWindow(5);
        InputException e = assertThrows(InputException.class, () -> c.requireWindow(64));
        assertOneLine(e, p.toString(), "--seq-len", String.valueOf(c.train().length), String.valueOf(c.validation().length));
    }

    // ---------------------------------------------------------------- helpers

    private static Path write(String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text);
    }

    private static void assertOneLine(InputException e, String... parts) {
        String m = e.getMessage();
        assertFalse(m.contains("\n") || m.contains("\r"), "message is more than one line: " + m);
        for (String p : parts) {
            assertTrue(m.contains(p), "message lacks '" + p + "': " + m);
        }
    }

    private static String strictUtf8(byte[] b) throws CharacterCodingException {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(b)).toString();
    }

    private static int count(byte[] b, byte x) {
        int n = 0;
        for (byte v : b) {
            if (v == x) {
                n++;
            }
        }
        return n;
    }
}
