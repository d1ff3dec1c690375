#if SLUICE_SYSTEM_ALLOCATOR
import SluiceColumnar

/// In sanitizer builds, `Mutex` is a pthread mutex ThreadSanitizer understands (see `PthreadMutex`).
typealias Mutex<Value: ~Copyable> = PthreadMutex<Value>
#endif
