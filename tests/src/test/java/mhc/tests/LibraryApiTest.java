package mhc.tests;

import mhc.engine.Config;
import mhc.engine.LanguageModel;
import mhc.engine.data.BatchSampler;
import mhc.engine.data.Corpus;
import mhc.engine.train.TrainSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's library example, using only the public API. */
class LibraryApiTest {
    @Test
    void buildTrainEvaluateSaveLoadGenerate(@TempDir Path dir) {
        Config cfg = Config.preset("tiny").withAll(Map.of("connection", "mhc", "width", 32, "seq_len", 32, "batch_size", 4));
        Corpus text = Corpus.load(null); // the bundled Europarl sample
        double before, after;
        try (LanguageModel lm = LanguageModel.create(cfg, 42, TrainSettings.defaults().withSteps(30).withLr(1e-2).withWarmup(5))) {
            BatchSampler batches = new BatchSampler(text.train(), cfg.batchSize(), cfg.seqLen(), 1);
            before = lm.evaluate(text, 2);
            for (int i = 0; i < 30; i++) {
                LanguageModel.Step s = lm.trainStep(batches.next());
                assertEquals(i + 1, s.step());
            }
            after = lm.evaluate(text, 2);
            lm.save(dir.resolve("tiny.safetensors"));
        }
        assertTrue(after < before - 1.0, "validation loss " + before + " -> " + after);
        try (LanguageModel lm = LanguageModel.load(dir.resolve("tiny.safetensors"))) {
            assertEquals(after, lm.evaluate(text, 2), 1e-9, "same loss after reload");
            String a = lm.generate("The Commission", 60, 0.8, 40, 7);
            String b = lm.generate("The Commission", 60, 0.8, 40, 7);
            assertEquals(a, b, "same seed, same text");
            byte[] bytes = a.getBytes(StandardCharsets.UTF_8);
            assertTrue(bytes.length >= 40, "about 60 bytes of text (" + bytes.length + ")");
            assertTrue(StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)) != null);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new AssertionError("output is not valid UTF-8", e);
        }
    }
}
