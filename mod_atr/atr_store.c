/* stub: to be implemented */
#include "atr_store.h"
