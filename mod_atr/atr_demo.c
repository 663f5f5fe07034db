/* stub: to be implemented */
#include "atr_demo.h"
