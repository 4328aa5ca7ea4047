//! When to flush: a buffer of records that is full at the size hint or old at the interval
//! hint, measured on the injected clock.
