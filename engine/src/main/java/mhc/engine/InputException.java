package mhc.engine;

/**
 * Bad input from the user: a missing or malformed file, a wrong shape, an impossible config.
 * The message is one line that names the thing and says what to do; the command line prints
 * it without a stack trace and exits with code 2.
 */
public class InputException extends RuntimeException {
    public InputException(String message) {
        super(message);
    }

    public InputException(String message, Throwable cause) {
        super(message, cause);
    }
}
