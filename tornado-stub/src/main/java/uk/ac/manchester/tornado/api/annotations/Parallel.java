package uk.ac.manchester.tornado.api.annotations;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Compile-time stand-in for TornadoVM's {@code @Parallel}: marks a loop index whose iterations
 * are independent. Same package, name, target and retention as the real annotation, which
 * replaces this one under {@code -Ptornado}. This class is never packaged.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.LOCAL_VARIABLE, ElementType.PARAMETER})
public @interface Parallel {
}
